"""AWS Bedrock batch inference through ``boto3`` over real HTTP: S3 is moto in server mode, the batch
inference control plane the test server beside it (tests/support/bedrock_server.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from support.bedrock_server import BedrockServer

from langbatch_core import (
    Batch,
    BedrockClaudeChatCompletionBatch,
    ConfigurationError,
    Connection,
    InvalidRequestsError,
    JobFailedError,
    load_results,
    validate_file,
)
from langbatch_core.errors import SecretInSettingError
from langbatch_core.providers import provider_for
from langbatch_core.providers.bedrock import custom_id_of, model_input, record_id
from langbatch_core.storage import default_storage

MODEL = "anthropic.claude-haiku-4-5-20251001-v1:0"
ROLE = "arn:aws:iam::123456789012:role/BedrockBatch"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("LANGBATCH_PROVIDER_RETRY_SECONDS", "20")


@pytest.fixture
def server(aws):
    with BedrockServer() as running:
        running.s3().create_bucket(Bucket="lb-bucket")
        yield running


def connection(server) -> Connection:
    return Connection.bedrock(region="us-east-1", bucket="lb-bucket", role_arn=ROLE, base_url=server.base_url)


def line(custom_id: str, prompt: str, **body) -> dict:
    messages = [{"role": "user", "content": prompt}]
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": MODEL, "messages": messages, **body}}  # fmt: skip


def write(path, prompts: list[str]) -> str:
    path.write_text("".join(json.dumps(line(f"req-{i}", p)) + "\n" for i, p in enumerate(prompts)))
    return str(path)


def record_ids_sent(server, index: int = -1) -> list[str]:
    uri = server.creates[index]["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = server.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    return sorted(custom_id_of(json.loads(raw)["recordId"]) for raw in body.splitlines())


def test_records_carry_claude_s_format_and_a_reversible_record_id():
    body = line("a", "hi", max_tokens=20, temperature=0.2)["body"]
    body["messages"].insert(0, {"role": "system", "content": "Be brief."})
    assert model_input(body) == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 20,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "temperature": 0.2,
    }
    assert record_id("req-1_é").isalnum() and custom_id_of(record_id("req-1_é")) == "req-1_é"


def test_what_bedrock_cannot_take_is_refused_by_line_and_too_small_a_job_by_file(tmp_path):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    schema = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    lines = [
        line("fine", "hi"),
        line("tools", "hi", tools=tools),
        line("schema", "hi", response_format=schema),
        line("two", "hi", n=2),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in lines))
    provider = provider_for(Connection.bedrock(region="us-east-1", bucket="b", role_arn=ROLE))
    report = validate_file(path, limits=provider.limits, capabilities=provider.capabilities)
    found = {(issue.line, issue.code, issue.param) for issue in report.issues}
    assert found == {
        (2, "unsupported_parameter", "body.tools"),
        (3, "unsupported_parameter", "body.response_format"),
        (4, "unsupported_parameter", "body.n"),
        (1, "too_few_requests", None),  # Bedrock runs no job under 100 records
    }
    assert "at least 100 requests" in " ".join(issue.message for issue in report.issues)
    ok = validate_file(write(tmp_path / "ok.jsonl", ["q"] * 100), limits=provider.limits)
    assert ok.ok and len(ok.jobs) == 1


def test_lifecycle_results_and_retry_keeping_successes(tmp_path, server):
    prompts = [f"q{i}" for i in range(100)] + [f"[[throttle]] t{i}" for i in range(100)]
    batch = BedrockClaudeChatCompletionBatch(
        write(tmp_path / "in.jsonl", prompts), connection=connection(server)
    )
    batch.start()
    job = batch.record.jobs[0]
    tagged = {"langbatch_batch_id": batch.id, "langbatch_attempt": str(job.attempt), "langbatch_job": job.key}
    assert server.creates[0]["tags"] == [{"key": k, "value": v} for k, v in tagged.items()]
    assert batch.wait(poll_interval=0.05) == "completed"  # PartiallyCompleted: some records failed
    ok, failed = batch.get_results()
    assert len(ok) == 100 and {f["status_code"] for f in failed} == {429}
    assert sorted(r["content"] for r in ok)[0].startswith("echo: q")
    assert batch.record.jobs[0].request_counts == {"total": 200, "completed": 100, "failed": 100}
    table = load_results(batch.get_results_file())
    assert set(table["status"]) == {"succeeded", "failed"} and table["prompt_tokens"].min() > 0

    batch.retry()  # the throttled records, never the successes
    assert record_ids_sent(server) == sorted(f"req-{i}" for i in range(100, 200))
    batch.wait(poll_interval=0.05)
    assert len(batch.get_results()[0]) == 100


def test_a_retry_under_the_minimum_record_count_is_refused_before_anything_is_sent(tmp_path, server):
    prompts = [f"q{i}" for i in range(100)] + ["[[throttle]] one"]
    batch = BedrockClaudeChatCompletionBatch(
        write(tmp_path / "in.jsonl", prompts), connection=connection(server)
    )
    batch.start()
    batch.wait(poll_interval=0.05)
    with pytest.raises(InvalidRequestsError) as refused:
        batch.retry()
    assert any(issue.code == "too_few_requests" for issue in refused.value.issues)
    assert len(server.creates) == 1


def test_stop_mid_way_keeps_the_records_done_and_the_rest_are_not_run(tmp_path, aws):
    with BedrockServer(processing_seconds=0.0) as server:
        server.s3().create_bucket(Bucket="lb-bucket")
        prompts = [f"q{i}" for i in range(100)] + [f"[[slow]] s{i}" for i in range(50)]
        batch = BedrockClaudeChatCompletionBatch(
            write(tmp_path / "in.jsonl", prompts), connection=connection(server)
        )
        batch.start()
        batch.cancel()
        assert batch.wait(poll_interval=0.05) == "cancelled"
        counts = load_results(batch.get_results_file())["status"].value_counts().to_dict()
        assert counts == {"succeeded": 100, "cancelled": 50}
        assert (batch.record.succeeded, batch.record.not_run) == (100, 50)


def test_an_expired_job_keeps_its_partial_results(tmp_path, aws):
    with BedrockServer(processing_seconds=0.05, expire_seconds=0.6) as server:
        server.s3().create_bucket(Bucket="lb-bucket")
        prompts = [f"q{i}" for i in range(100)] + [f"[[slow]] s{i}" for i in range(100)]
        batch = BedrockClaudeChatCompletionBatch(
            write(tmp_path / "in.jsonl", prompts), connection=connection(server)
        )
        batch.start()
        assert batch.wait(poll_interval=0.05) == "expired"
        counts = load_results(batch.get_results_file())["status"].value_counts().to_dict()
        assert counts == {"succeeded": 100, "expired": 100}
        batch.retry()
        assert record_ids_sent(server) == sorted(f"req-{i}" for i in range(100, 200))


def test_a_job_bedrock_fails_carries_its_message(tmp_path, aws):
    with BedrockServer(min_records=150) as server:  # an account whose quota is higher than the default
        server.s3().create_bucket(Bucket="lb-bucket")
        batch = BedrockClaudeChatCompletionBatch(
            write(tmp_path / "in.jsonl", ["q"] * 100), connection=connection(server)
        )
        batch.start()
        assert batch.wait(poll_interval=0.05) == "failed"
        with pytest.raises(JobFailedError, match="minimum of 150 records"):
            batch.raise_for_status()


def test_throttling_of_the_control_plane_is_ridden_out(tmp_path, server):
    server.inject(429, times=2)
    batch = BedrockClaudeChatCompletionBatch(
        write(tmp_path / "in.jsonl", ["q"] * 100), connection=connection(server)
    )
    batch.start()
    assert len(server.creates) == 1
    assert batch.wait(poll_interval=0.05) == "completed"


CRASH = textwrap.dedent(
    """
    import os, sys
    from langbatch_core import BedrockClaudeChatCompletionBatch, Connection
    from langbatch_core.providers import register_provider
    from langbatch_core.providers.bedrock import BedrockProvider

    class CrashAfterCreate(BedrockProvider):  # dies once Bedrock answered the create, before the record
        def create(self, *args, **kw):
            super().create(*args, **kw)
            os._exit(75)

    register_provider("bedrock", CrashAfterCreate)
    connection = Connection.bedrock(
        region="us-east-1", bucket="lb-bucket", role_arn=sys.argv[3], base_url=sys.argv[2]
    )
    batch = BedrockClaudeChatCompletionBatch(sys.argv[1], connection=connection)
    print(batch.id, flush=True)
    batch.start()
    """
)


def test_a_kill_between_create_and_record_never_creates_the_job_twice(tmp_path, server):
    path = write(tmp_path / "in.jsonl", [f"q{i}" for i in range(100)])
    done = subprocess.run(
        [sys.executable, "-c", CRASH, path, server.base_url, ROLE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 75, done.stderr
    batch_id = done.stdout.split()[0]
    [job] = default_storage().load(batch_id).jobs
    assert job.status == "submitting" and job.input_file_id.startswith("s3://lb-bucket/")
    batch = Batch.load(batch_id)
    batch.start()  # finds the job by its name instead of creating another
    assert len(server.creates) == 1
    assert batch.wait(poll_interval=0.05) == "completed"
    assert len(batch.get_results()[0]) == 100


def test_the_cli_runs_on_a_bedrock_connection_set_by_environment(tmp_path, server, monkeypatch):
    from click.testing import CliRunner

    from langbatch_core.cli import cli

    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("LANGBATCH_BEDROCK_BUCKET", "lb-bucket")
    monkeypatch.setenv("LANGBATCH_BEDROCK_ROLE_ARN", ROLE)
    runner = CliRunner()
    small = runner.invoke(
        cli, ["validate", write(tmp_path / "small.jsonl", ["q"]), "--connection", "bedrock"]
    )
    assert small.exit_code == 1 and "too_few_requests" in small.output
    path = write(tmp_path / "in.jsonl", ["q"] * 100)
    args = ["create", path, "--connection", "bedrock", "--base-url", server.base_url, "--start"]
    created = runner.invoke(cli, args, catch_exceptions=False)
    assert created.exit_code == 0, created.output
    batch_id = default_storage().list()[0].id
    assert runner.invoke(cli, ["wait", batch_id], catch_exceptions=False).exit_code == 0


def test_settings_are_checked_before_anything_is_recorded(tmp_path, aws, monkeypatch):
    monkeypatch.delenv("LANGBATCH_BEDROCK_BUCKET", raising=False)
    connection = Connection.bedrock(region="us-east-1", role_arn=ROLE)
    batch = BedrockClaudeChatCompletionBatch(write(tmp_path / "in.jsonl", ["q"] * 100), connection=connection)
    with pytest.raises(ConfigurationError, match="LANGBATCH_BEDROCK_BUCKET"):
        batch.start()
    assert batch.record.jobs == []


def test_a_bedrock_connection_keeps_its_settings_and_never_a_credential():
    connection = Connection.bedrock(region="eu-west-1", bucket="b", role_arn=ROLE)
    assert Connection.from_dict(connection.to_dict()) == connection
    assert connection.to_dict()["options"] == {"region": "eu-west-1", "bucket": "b", "role_arn": ROLE}
    with pytest.raises(SecretInSettingError):
        Connection("bedrock", options={"secret_access_key": "abc"})
