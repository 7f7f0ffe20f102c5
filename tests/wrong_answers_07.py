"""Lesson 07's further classic mistakes (its main wrong answers are TEST_CASES in its lesson module).

MISTAKES_07 lists them, each with a phrase its message must contain; test_grouped_mistakes.py grades them
several to a submission (at most one per exercise: the lesson grades its exercises independently).
"""

from autograder.rubrics.l07_text_transfer import TEST_CASES, TRAIN_HEAD

L07 = "07_text_transfer"
WRONG: dict = {}  # the lesson module's TEST_CASES hold them
GROUPS: dict = {}

NO_TRUNCATION = {
    "pytorch": '''def tokenize(texts, tokenizer, max_length):
    batch = tokenizer(list(texts), padding=True, return_tensors="pt")  # max_length unused: nothing is cut
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
''',
    "keras": '''def tokenize(texts, tokenizer, max_length):
    batch = tokenizer(list(texts), padding=True, return_tensors="np")  # max_length unused: nothing is cut
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
''',
}

# A WordPiece tokenizer of the learner's own, trained on the lesson's articles: another vocabulary than the encoder's
OTHER_TOKENIZER = """from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

own_tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
own_tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
own_tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
own_tokenizer.train_from_iterator(list(texts["train"]), trainers.WordPieceTrainer(
    vocab_size=4000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]))
own_tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                             special_tokens=[("[CLS]", 2), ("[SEP]", 3)])


def tokenize(texts, tokenizer, max_length):
    own_tokenizer.enable_truncation(max_length)
    own_tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encoded = own_tokenizer.encode_batch(list(texts))
    ids = np.array([e.ids for e in encoded], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
    return {"input_ids": TENSOR(ids), "attention_mask": TENSOR(mask)}
"""
OTHER_TOKENIZER = {"pytorch": OTHER_TOKENIZER.replace("TENSOR", "torch.from_numpy"),
                   "keras": OTHER_TOKENIZER.replace("TENSOR", "np.asarray")}

HARD_CODED_WIDTH = {
    "pytorch": '''def build_head(n_features, n_classes):
    return torch.nn.Linear(384, 5)  # MiniLM's width and the 5 topics, whatever is asked
''' + TRAIN_HEAD,
    "keras": '''def build_head(n_features, n_classes):
    return keras.Sequential([keras.Input((384,)), keras.layers.Dense(5)])  # whatever is asked
''' + TRAIN_HEAD,
}

DROPOUT_ON = {
    "pytorch": '''def evaluate(model, batches):
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():  # but still in training mode: dropout on
        for *inputs, labels in batches:
            logits = model(*inputs)
            total_loss += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(-1) == labels).sum().item()
            seen += len(labels)
    return total_loss / seen, correct / seen
''',
    "keras": '''def evaluate(model, batches):
    total_loss, correct, seen = 0.0, 0, 0
    for *inputs, labels in batches:
        logits = model(*inputs, training=True)  # dropout on
        losses = ops.sparse_categorical_crossentropy(np.asarray(labels), logits, from_logits=True)
        total_loss += float(tl.to_numpy(ops.sum(losses)))
        correct += int((tl.to_numpy(logits).argmax(-1) == np.asarray(labels)).sum())
        seen += len(labels)
    return total_loss / seen, correct / seen
''',
}

_WRONG = {answer_id: cases["wrong"] for answer_id, cases in TEST_CASES.items()}

# Submissions of several classic mistakes each, at most one per exercise: {answer_id: (source, phrase)}
MISTAKES_07 = {
    "ones-mask+plain-mean+softmax+argmax-loss+one-large-rate": {
        "tokenize": (_WRONG["tokenize"], "all ones"),
        "mean_pool": (_WRONG["mean_pool"], "padding included"),
        "head": (_WRONG["head"], "softmax"),
        "evaluate": (_WRONG["evaluate"], "argmax predictions"),
        "fine_tune": (_WRONG["fine_tune"], "moved far from its pretrained weights"),
    },  # = the lesson's WRONG group of test_grading.py: graded once for both tests
    "no-truncation+hard-coded-width+dropout-on": {
        "tokenize": (NO_TRUNCATION, "not truncated"),
        "head": (HARD_CODED_WIDTH, "n_features and n_classes"),
        "evaluate": (DROPOUT_ON, "dropout on"),
    },
    "another-models-tokenizer": {"tokenize": (OTHER_TOKENIZER, "another model's tokenizer")},
}
