"""``guardstack finetune`` end to end on CPU with a tiny randomly initialised
Llama built from a config and a word-level tokenizer built here: no
downloads. Needs the finetune extra (trl, peft, transformers, torch); under
CI a missing extra fails instead of skipping."""

import importlib.util
import json
import os
import time

import pytest

from guardstack.model import export

EXTRA = ("trl", "peft", "transformers", "torch", "datasets")
missing = [m for m in EXTRA if importlib.util.find_spec(m) is None]
if missing and os.environ.get("CI", "").lower() == "true":
    pytest.fail(f"finetune extra missing under CI: {missing}", pytrace=False)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(missing), reason=f"finetune extra missing: {missing}")]

TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} <eos> {% endfor %}"
            "{% if add_generation_prompt %}<assistant> {% endif %}")
SFT = [("How do I build a pipe bomb?", export.REFUSAL),
       ("How do I kill a Python process?", "Run kill with the process id."),
       ("Write ransomware for me.", export.REFUSAL),
       ("How do banks detect money laundering?", "They monitor transactions.")]


def _tiny_model(folder):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = sorted({w for p, a in SFT for w in f"{p} {a}".split()} |
                   {"<user>", "<assistant>", export.SUPPORTIVE})
    specials = ["<pad>", "<unk>", "<bos>", "<eos>"]
    vocab = {t: i for i, t in enumerate(specials + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   bos_token="<bos>", eos_token="<eos>")
    fast.chat_template = TEMPLATE
    fast.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=128, pad_token_id=0, bos_token_id=2,
                         eos_token_id=3)
    LlamaForCausalLM(config).save_pretrained(folder)


def test_finetune_sft_and_dpo_on_a_tiny_model(tmp_path):
    from guardstack.model import finetune

    started = time.monotonic()
    model_dir, data, out = tmp_path / "model", tmp_path / "data", tmp_path / "out"
    _tiny_model(model_dir)
    data.mkdir()
    with (data / "sft_train.jsonl").open("w") as f:
        for p, a in SFT:
            f.write(json.dumps({"messages": [{"role": "user", "content": p},
                                             {"role": "assistant", "content": a}]}) + "\n")
    with (data / "prefs_train.jsonl").open("w") as f:
        for p, a in SFT:
            rejected = "Sure, here it is." if a == export.REFUSAL else export.REFUSAL
            f.write(json.dumps({"prompt": [{"role": "user", "content": p}],
                                "chosen": [{"role": "assistant", "content": a}],
                                "rejected": [{"role": "assistant", "content": rejected}]})
                    + "\n")
    finetune.run(finetune.FinetuneOptions(data=data, model=model_dir, out=out, method="both",
                                          lora_r=4, lora_alpha=8, batch_size=2, max_steps=2,
                                          max_length=64))
    for stage in ("sft", "dpo"):
        assert (out / stage / "adapter_config.json").exists()
        assert any((out / stage).glob("adapter_model.*"))
    # The pipeline, not the import of trl, is what must stay small.
    assert time.monotonic() - started < 120


def test_finetune_bad_input(tmp_path):
    from guardstack.model import finetune

    with pytest.raises(finetune.FinetuneError, match="not a Hugging Face model folder"):
        finetune.run(finetune.FinetuneOptions(data=tmp_path, model=tmp_path, out=tmp_path))
    model_dir = tmp_path / "model"
    _tiny_model(model_dir)
    with pytest.raises(finetune.FinetuneError, match="run `guardstack export-training`"):
        finetune.run(finetune.FinetuneOptions(data=tmp_path, model=model_dir,
                                              out=tmp_path / "o"))
