"""Builds a tiny random Llama (1.3M parameters) with a locally trained byte-level BPE tokenizer and a chat
template, for serving with a real vLLM CPU build. Run with the vLLM venv's python:  build_tiny_model.py DIR"""

import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def corpus() -> list[str]:
    words = ("river stone quiet market signal orange window theory garden silver engine morning painter harbor "
             "winter logic castle velvet number bridge thunder pocket mirror candle forest rocket anchor circle "
             "meadow puzzle lantern shadow copper island feather canyon").split()
    lines = [" ".join(words[(i * 7 + j) % len(words)] + (str(i) if j % 5 == 0 else "") for j in range(40))
             for i in range(3000)]
    # Python's own sources add variety (punctuation, code) without any download
    for path in list(Path(torch.__file__).parent.glob("*.py"))[:40]:
        lines += path.read_text(errors="ignore").splitlines()
    return lines


def main(out: str) -> None:
    out_dir = Path(out)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<s>", "</s>", "<unk>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
    trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=4096,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=False, torch_dtype="bfloat16")
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(out_dir, safe_serialization=True)
    print(out_dir)


if __name__ == "__main__":
    main(sys.argv[1])
