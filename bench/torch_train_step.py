"""The peer of `barl bench engine --train-only`: one training step of a
Hugging Face folder in PyTorch (f32, CPU, eager), optionally with a PEFT LoRA
adapter (rank R, alpha 2R, all-linear, as `--lora-rank R` in barl).

    python bench/torch_train_step.py MODEL_DIR BATCH LEN RUNS [LORA_RANK]

A step is barl's: the mean NLL of BATCH random sequences of LEN tokens,
backward, AdamW over the trainable parameters. Prints one JSON line: median
seconds, peak RSS (bytes) and trainable parameters.
"""
import json
import resource
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    folder, batch, length, runs = sys.argv[1], *map(int, sys.argv[2:5])
    rank = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if rank > 0:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear",
                       lora_dropout=0.0, task_type="CAUSAL_LM"),
        )
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-6)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (batch, length))
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        logits = model(input_ids=ids).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": statistics.median(times), "peak_rss_bytes": peak,
                      "trainable_parameters": sum(p.numel() for p in params),
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
