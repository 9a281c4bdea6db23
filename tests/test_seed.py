"""Every snippet of the user's API description (seed/batch-api.md), as written, with the import
``from langbatch_core import ...``, against the local engine through the official client (the default
connection: OPENAI_BASE_URL + OPENAI_API_KEY)."""

from __future__ import annotations

import re

import orjson
import pytest
from batch_support import chat_line, prompts_received
from support.fixtures import SEED_API

from langbatch_core import BatchNotFoundError, BatchRecord, BatchStorage

INIT = """
from langbatch_core import OpenAIChatCompletionBatch

batch = OpenAIChatCompletionBatch("data.jsonl")
print(batch.id)
"""

CREATE = """
batch = OpenAIChatCompletionBatch.create([
    {"messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of the moon?"}
    ]},
    {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of the moon?"}
        ]
    }
])
"""

START = "batch.start()"
STATUS = "batch.get_status()"
RETRY = "batch.retry()"

RESULTS = """
successful_results, unsuccessful_results = batch.get_results()

for result in successful_results:
    print(result)
"""

RESULTS_FILE = """
file_path = batch.get_results_file()

with open(file_path, "r") as file:
    results = file.readlines()

for result in results:
    print(result)
"""

UNSUCCESSFUL = """
unsuccessful_requests = batch.get_unsuccessful_requests()

for request in unsuccessful_requests:
    print(request)
"""

BY_IDS = """
custom_ids = ["custom_id_1", "custom_id_2"]
requests = batch.get_requests_by_custom_ids(custom_ids)

for request in requests:
    print(request)
"""

SAVE = """
# save batch
batch.save()

# Save Batch to Custom Storage
storage = CustomStorage()
batch = OpenAIChatCompletionBatch("data.jsonl", storage=storage)
batch.save()
"""

LOAD = """
# load batch
batch = OpenAIChatCompletionBatch.load("batch_id")

# Load Batch from Custom Storage
storage = CustomStorage()
batch = OpenAIChatCompletionBatch.load("batch_id", storage=storage)
"""


class CustomStorage(BatchStorage):
    """The seed's CustomStorage: here, records kept in one JSON file per store."""

    def __init__(self):
        super().__init__()
        self.path = self.data_dir / "custom-store.json"

    def _all(self):
        return orjson.loads(self.path.read_bytes()) if self.path.exists() else {}

    def save(self, record):
        self.path.write_bytes(orjson.dumps({**self._all(), record.id: record.to_dict()}))

    def load(self, batch_id):
        if batch_id not in self._all():
            raise BatchNotFoundError(f"no batch {batch_id} in {self.path}")
        return BatchRecord.from_dict(self._all()[batch_id])

    def list(self):
        return [BatchRecord.from_dict(r) for r in self._all().values()]

    def delete(self, batch_id):
        self.path.write_bytes(orjson.dumps({k: v for k, v in self._all().items() if k != batch_id}))


@pytest.fixture
def seed(engine, tmp_path, monkeypatch):
    """The seed's world: data.jsonl in the working directory, the default connection at the engine."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", engine.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "dummy-key")
    lines = [chat_line("custom_id_1", "Hello world!"), chat_line("custom_id_2", "Fail me [[400]]")]
    (tmp_path / "data.jsonl").write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return {"CustomStorage": CustomStorage}


def run(snippet, namespace):
    exec(compile(snippet, "<seed snippet>", "exec"), namespace)


def test_every_snippet_on_the_created_batch(seed, capsys, upstream):
    run(INIT, seed)
    assert capsys.readouterr().out.strip() == seed["batch"].id
    run(CREATE, seed)
    run(START, seed)
    run(STATUS, seed)
    run(RETRY, seed)
    seed["batch"].wait(poll_interval=0.05)
    for snippet in (RESULTS, RESULTS_FILE, UNSUCCESSFUL, BY_IDS):
        run(snippet, seed)
    out = capsys.readouterr().out
    assert len(seed["successful_results"]) == 2 and len(seed["results"]) == 2
    assert all("echo: What is the capital of the moon?" in line for line in seed["results"])
    assert out.count("{'custom_id': 'request-") == 2  # the printed results
    assert seed["unsuccessful_results"] == [] and seed["requests"] == []
    assert prompts_received(upstream) == {"What is the capital of the moon?": 2}
    assert seed["batch"].get_status() == "completed"


def test_every_snippet_on_the_file_batch(seed, capsys, upstream):
    run(INIT, seed)
    run(START, seed)
    run(STATUS, seed)
    seed["batch"].wait(poll_interval=0.05)
    run(RETRY, seed)  # nothing worth retrying: the failure is a 400
    for snippet in (RESULTS, RESULTS_FILE, UNSUCCESSFUL, BY_IDS):
        run(snippet, seed)
    assert [r["custom_id"] for r in seed["successful_results"]] == ["custom_id_1"]
    assert [r["custom_id"] for r in seed["unsuccessful_results"]] == ["custom_id_2"]
    assert [r["custom_id"] for r in seed["unsuccessful_requests"]] == ["custom_id_2"]
    assert [r["custom_id"] for r in seed["requests"]] == ["custom_id_1", "custom_id_2"]
    assert "echo: Hello world!" in capsys.readouterr().out
    assert prompts_received(upstream) == {"Hello world!": 1, "Fail me [[400]]": 1}


def test_save_and_load_snippets(seed):
    run(INIT, seed)
    saved_default = seed["batch"]
    run(SAVE, seed)
    saved_custom = seed["batch"]
    assert isinstance(saved_custom.storage, CustomStorage) and saved_custom.id != saved_default.id
    # "batch_id" in the seed is a placeholder: as written it names no batch, and says so clearly
    with pytest.raises(BatchNotFoundError, match="batch_id"):
        run(LOAD, seed)
    with_ids = LOAD.replace('"batch_id"', repr(saved_default.id), 1).replace(
        '"batch_id"', repr(saved_custom.id)
    )
    run(with_ids, seed)
    assert seed["batch"].id == saved_custom.id and seed["batch"].record.request_count == 2
    assert isinstance(seed["batch"].storage, CustomStorage)


def test_the_snippets_here_are_the_seed_s_own():
    text = SEED_API.read_text().replace("from langbatch import", "from langbatch_core import")
    blocks = [block.strip() for block in re.findall(r"```python\n(.*?)```", text, re.S)]
    ours = [INIT, CREATE, START, STATUS, RETRY, RESULTS, RESULTS_FILE, UNSUCCESSFUL, BY_IDS, SAVE, LOAD]
    assert blocks == [snippet.strip() for snippet in ours]
