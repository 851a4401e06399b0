"""Builds a random LoRA adapter (rank 8 on q_proj and v_proj, PEFT's file layout) for the tiny model of
build_tiny_model.py, for serving with vLLM's --lora-modules. Run with the vLLM venv's python:
build_lora_adapter.py MODEL_DIR OUT_DIR"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

RANK = 8


def main(model_dir: Path, out: Path) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    widths = {"q_proj": hidden, "v_proj": config["num_key_value_heads"] * (hidden // heads)}
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for layer in range(config["num_hidden_layers"]):
        for proj, width in widths.items():
            name = f"base_model.model.model.layers.{layer}.self_attn.{proj}"
            tensors[f"{name}.lora_A.weight"] = torch.randn(RANK, hidden, generator=generator) * 0.01
            tensors[f"{name}.lora_B.weight"] = torch.randn(width, RANK, generator=generator) * 0.01
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "adapter_model.safetensors"))
    (out / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": RANK, "lora_alpha": 16, "lora_dropout": 0.0,
        "target_modules": list(widths), "bias": "none", "fan_in_fan_out": False, "modules_to_save": None,
        "base_model_name_or_path": str(model_dir)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
