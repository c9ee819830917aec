"""The text side of the text-to-image families: captions -> token ids -> φ(t).

- `zoo.text.tokenizer`: the tokenisation rule, in plain Python and in TensorFlow ops;
- `zoo.text.encoder`: the convolutional text encoder;
- `zoo.text.pretrain`: its joint-embedding pretraining against images (Reed et al. 2016);
- `zoo.text.store`: a pretrained encoder saved to and loaded from a directory.
"""

from zoo.text.encoder import MaskedMeanPooling, ZeroPadding, build_text_encoder, encoder_config
from zoo.text.pretrain import pretrain_and_save, pretrain_text_encoder
from zoo.text.store import has_text_encoder, load_text_encoder, save_text_encoder
from zoo.text.tokenizer import (
    OOV_ID,
    OOV_TOKEN,
    PAD_ID,
    PAD_TOKEN,
    TOKENIZATION_RULE,
    Tokenizer,
    TokenizerLayer,
    split_words,
    split_words_tf,
)

__all__ = [
    "OOV_ID",
    "OOV_TOKEN",
    "PAD_ID",
    "PAD_TOKEN",
    "TOKENIZATION_RULE",
    "MaskedMeanPooling",
    "Tokenizer",
    "TokenizerLayer",
    "ZeroPadding",
    "build_text_encoder",
    "encoder_config",
    "has_text_encoder",
    "load_text_encoder",
    "pretrain_and_save",
    "pretrain_text_encoder",
    "save_text_encoder",
    "split_words",
    "split_words_tf",
]
