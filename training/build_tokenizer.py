"""Build SD's CLIP BPE tokenizer files (vocab.json, merges.txt) offline.

The merges come from open-clip-torch's `bpe_simple_vocab_16e6.txt.gz` (MIT), the
same list OpenAI's CLIP and Stable Diffusion use. We keep only the first merges to
shrink the text encoder's embedding table; the builder checks that every word the
shapes model knows is still a single token.
"""
import argparse
import gzip
import importlib.util
import json
from pathlib import Path

from transformers import CLIPTokenizer

from training.shapes_data import VOCABULARY_WORDS

DEFAULT_MERGES = 16384
MODEL_MAX_LENGTH = 77


def bytes_to_unicode():
    """CLIP/GPT-2's reversible byte -> printable unicode map."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def find_open_clip_vocab() -> Path:
    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        raise SystemExit("open-clip-torch is needed once to build the tokenizer: pip install --no-deps open-clip-torch==3.3.0")
    return Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"


def build(out_dir: Path, bpe_path: Path, num_merges: int = DEFAULT_MERGES) -> CLIPTokenizer:
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    tokenizer = write_tokenizer(out_dir, lines[1 : num_merges + 1])  # line 0 is the version header
    for word in VOCABULARY_WORDS:
        ids = tokenizer(word, add_special_tokens=False).input_ids
        assert len(ids) == 1, f"{word!r} splits into {len(ids)} tokens; keep more merges"
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def write_tokenizer(out_dir: Path, merges: list[str]) -> CLIPTokenizer:
    """A CLIP tokenizer from BPE merges ("a b" lines), in CLIP's vocabulary order."""
    base = list(bytes_to_unicode().values())
    vocab = base + [token + "</w>" for token in base]
    vocab += ["".join(merge.split()) for merge in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}, ensure_ascii=False))
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    # transformers 5 takes the two paths positionally; keywords are silently ignored.
    tokenizer = CLIPTokenizer(str(out_dir / "vocab.json"), str(out_dir / "merges.txt"))
    tokenizer.model_max_length = MODEL_MAX_LENGTH
    return tokenizer


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--merges", type=int, default=DEFAULT_MERGES)
    parser.add_argument("--bpe", type=Path, default=None, help="path to bpe_simple_vocab_16e6.txt.gz")
    args = parser.parse_args()
    tokenizer = build(args.out, args.bpe or find_open_clip_vocab(), args.merges)
    print(f"tokenizer with {len(tokenizer)} tokens written to {args.out}")


if __name__ == "__main__":
    main()
