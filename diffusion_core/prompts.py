"""Tokenize and encode prompts with the model's CLIP tokenizer and text encoder."""
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PromptInfo:
    token_count: int  # tokens of the prompt itself, without start/end tokens
    max_tokens: int  # what fits (75 for SD: 77 minus start and end)
    truncated: bool
    kept_text: str  # the part of the prompt the model actually sees

    def message(self) -> str:
        if not self.truncated:
            return f"{self.token_count}/{self.max_tokens} tokens"
        return (f"Prompt truncated: {self.token_count} tokens, only the first {self.max_tokens} are used "
                f"(it stops after: …{self.kept_text[-40:]!r}).")


def describe_prompt(tokenizer, prompt: str) -> PromptInfo:
    ids = tokenizer(prompt, add_special_tokens=False).input_ids
    max_tokens = tokenizer.model_max_length - 2
    kept = tokenizer.decode(ids[:max_tokens]) if len(ids) > max_tokens else prompt
    return PromptInfo(len(ids), max_tokens, len(ids) > max_tokens, kept)


@torch.no_grad()
def encode(tokenizer, text_encoder, prompts: list[str]) -> torch.Tensor:
    """CLIP hidden states, padded to the tokenizer's full length as SD was trained."""
    tokens = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    mask = None
    if getattr(text_encoder.config, "use_attention_mask", False):  # as diffusers does for such encoders
        mask = tokens.attention_mask.to(text_encoder.device)
    states = text_encoder(tokens.input_ids.to(text_encoder.device), attention_mask=mask)[0]
    return states.to(dtype=text_encoder.dtype)
