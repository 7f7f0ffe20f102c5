"""Lesson 07: tokens and attention masks, mean pooling over real tokens, a linear head on frozen sentence
embeddings, an evaluate that takes its loss from logits with dropout off, fine-tuning the top encoder layer with a
warm-up.

Probes: call the learner's functions on fixed inputs and record what they return. The held-out BBC articles are
encoded here with the pretrained encoder and the reference pooling (their labels never enter the kernel).
"""

import numpy as np

from ..probe_runtime import ProbeError
from ..probes.common import callable_, helpers, require

ENCODER, MAX_LENGTH, DATASET = "all-minilm-l6-v2", 64, "bbc_news"  # as the lesson sets them
LONG_TEXT = ("The central bank raised interest rates again on Thursday, the third rise this year, saying that "
             "inflation in the services sector had not yet slowed as much as it had hoped.")
TOKENIZE_TEXTS = ["Markets fell.", "", LONG_TEXT, "Über-cool résumé: a café's iPhone app!"]
TOKENIZE_LENGTHS = (12, 64)  # the long text is cut at 12 tokens and fits in 64
_rng = np.random.default_rng(7)
POOL_HIDDEN = _rng.normal(0, 1, (3, 6, 4)).astype(np.float32)
POOL_MASK = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]], dtype=np.int64)
POOL_WEIGHTS = _rng.normal(0, 1, (3, 4)).astype(np.float32)  # the probe differentiates sum(pooled * weights)
HEAD_INPUT = np.linspace(-2, 2, 5 * 16, dtype=np.float32).reshape(5, 16)
EVAL_X = np.round(_rng.normal(0, 1, (10, 6)), 3).astype(np.float32)
EVAL_Y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 1])
EVAL_W = np.round(_rng.normal(0, 0.8, (6, 3)), 3).astype(np.float32)  # (in, out); a second model has 3x the logits
EVAL_B = np.array([0.1, -0.2, 0.05], dtype=np.float32)
EVAL_BATCH = 4  # batches of 4, 4 and 2
SCHEDULE_TOTALS = (200, 37)
ENCODER_TEXTS = ["Shares rose after the results.", "The film won three awards."]
_CACHE: dict = {}


def _tokens(texts, framework):
    """Reference ids and mask for the encoder of the framework (torch tensors, or numpy arrays for Keras)."""
    from tlkit.text import load_tokenizer

    kind = "pt" if framework == "pytorch" else "np"
    batch = load_tokenizer(ENCODER)(list(texts), padding=True, truncation=True, max_length=MAX_LENGTH,
                                    return_tensors=kind)
    return batch["input_ids"], batch["attention_mask"]


def _last_hidden(encoder, texts, framework, batch_size=50):
    """The encoder's last hidden states (N, T, D) and masks, as numpy, padded per batch."""
    tl = helpers(framework)
    out = []
    for start in range(0, len(texts), batch_size):
        ids, mask = _tokens(texts[start:start + batch_size], framework)
        hidden = tl.to_numpy(encoder(input_ids=ids, attention_mask=mask)["last_hidden_state"])
        out.append((hidden, tl.to_numpy(mask)))
    return out


def _pooled(chunks) -> np.ndarray:
    return np.concatenate([(h * m[..., None]).sum(1) / m.sum(1, keepdims=True) for h, m in chunks])


def _pristine(framework):
    if ("encoder", framework) not in _CACHE:
        _CACHE["encoder", framework] = helpers(framework).load_text_encoder(ENCODER)
    return _CACHE["encoder", framework]


def _holdout_texts() -> list:
    from tlkit.data import load_inputs

    return [str(t) for t in load_inputs(DATASET, "holdout")]


def _holdout_embeddings(framework) -> np.ndarray:
    """Mean-pooled embeddings of the held-out articles by the pretrained encoder (computed once per kernel)."""
    if ("embeddings", framework) not in _CACHE:
        _CACHE["embeddings", framework] = _pooled(_last_hidden(_pristine(framework), _holdout_texts(), framework))
    return _CACHE["embeddings", framework]


def probe_tokenize(ns, framework):
    from tlkit.text import load_tokenizer

    tl = helpers(framework)
    fn = callable_(ns, "tokenize")
    found = []
    for max_length in TOKENIZE_LENGTHS:
        out = fn(list(TOKENIZE_TEXTS), load_tokenizer(ENCODER), max_length)
        try:
            ids, mask = out["input_ids"], out["attention_mask"]
        except (KeyError, TypeError, IndexError) as err:
            raise ProbeError("`tokenize` should return a dict with the keys \"input_ids\" and \"attention_mask\".") \
                from err
        ids_np, mask_np = tl.to_numpy(ids), tl.to_numpy(mask)
        found.append({"input_ids": ids_np.tolist(), "attention_mask": mask_np.tolist(),
                      "dtypes": [str(ids_np.dtype), str(mask_np.dtype)],
                      "types": [type(ids).__name__, type(mask).__name__]})
    return {"calls": found}


def _pool_inputs(framework):
    if framework == "pytorch":
        import torch

        hidden = torch.tensor(POOL_HIDDEN, requires_grad=True)
        return hidden, torch.from_numpy(POOL_MASK), lambda pooled: (pooled * torch.from_numpy(POOL_WEIGHTS)).sum()
    import keras

    # keras.ops.multiply: on the torch backend `pooled * ndarray` goes through NumPy and fails on a tensor that
    # requires grad
    return (keras.Variable(POOL_HIDDEN), POOL_MASK.copy(),
            lambda pooled: keras.ops.sum(keras.ops.multiply(pooled, POOL_WEIGHTS)))


def probe_mean_pool(ns, framework):
    tl = helpers(framework)
    fn = callable_(ns, "mean_pool")
    hidden, mask, weighted_sum = _pool_inputs(framework)
    pooled = tl.to_numpy(fn(hidden, mask))
    try:
        _, (grad,) = tl.loss_gradients(lambda: weighted_sum(fn(hidden, mask)), [hidden])
        grad, grad_error = np.round(tl.to_numpy(grad), 6).tolist(), None
    except Exception as err:  # noqa: BLE001  (pooling computed outside the framework has no gradient)
        grad, grad_error = None, f"{type(err).__name__}: {err}"[:300]
    return {"pooled": np.round(pooled, 6).tolist(), "gradient": grad, "gradient_error": grad_error}


def probe_head(ns, framework):
    tl = helpers(framework)
    fresh = callable_(ns, "build_head")(16, 3)
    try:
        outputs, fresh_error = np.round(np.asarray(tl.predict(fresh, HEAD_INPUT.copy(), scale=1)), 6).tolist(), None
    except Exception as err:  # noqa: BLE001  (a head built with fixed sizes fails on other widths)
        outputs, fresh_error = None, f"{type(err).__name__}: {err}"[:300]
    head = require(ns, "head")
    logits = np.asarray(tl.predict(head, _holdout_embeddings(framework).astype(np.float32), scale=1))
    return {"fresh_outputs": outputs, "fresh_error": fresh_error, "holdout_shape": list(logits.shape),
            "holdout_predictions": logits.argmax(axis=1).tolist() if logits.ndim == 2 else []}


def _eval_model(framework, scale):
    """A linear layer (fixed weights, logits times `scale`) followed by dropout 0.5, in training mode."""
    w, b = EVAL_W * scale, EVAL_B * scale
    if framework == "pytorch":
        import torch

        model = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.Dropout(0.5))
        with torch.no_grad():
            model[0].weight.copy_(torch.from_numpy(w.T.copy()))
            model[0].bias.copy_(torch.from_numpy(b))
        return model.train()
    import keras

    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3), keras.layers.Dropout(0.5)])
    model.layers[0].set_weights([w, b])
    return model


def _as_pair(result):
    try:
        loss, accuracy = result
        return float(helpers_to_float(loss)), float(helpers_to_float(accuracy))
    except (TypeError, ValueError) as err:
        raise ProbeError(f"`evaluate` should return two numbers, (mean loss, accuracy); it returned "
                         f"{type(result).__name__}.") from err


def helpers_to_float(x) -> float:
    return float(np.asarray(x.item() if hasattr(x, "item") else x, dtype=float))


def probe_evaluate(ns, framework):
    tl = helpers(framework)
    fn = callable_(ns, "evaluate")
    runs = {}
    for name, scale in (("base", 1.0), ("confident", 3.0)):
        model = _eval_model(framework, scale)
        batches = tl.make_batches(EVAL_X.copy(), EVAL_Y.copy(), batch_size=EVAL_BATCH, scale=1)
        first, second = _as_pair(fn(model, batches)), _as_pair(fn(model, batches))
        runs[name] = {"first": first, "second": second, "training_after": getattr(model, "training", None),
                      "logits": np.round(np.asarray(tl.predict(model, EVAL_X.copy(), scale=1)), 6).tolist()}
    return runs


def _top_drift(model, framework):
    """How far the model's top layer (`model.top`) moved from the pretrained one: ||W - W0|| / ||W0||, all weights."""
    tl = helpers(framework)
    top = getattr(model, "top", None)
    if top is None:
        return None
    pristine = _pristine(framework)
    if framework == "pytorch":
        theirs, before = list(top.parameters()), list(pristine.encoder.layer[-1].parameters())
    else:
        theirs, before = top.weights, pristine.encoder_layers[-1].weights
    theirs, before = [tl.to_numpy(w).ravel() for w in theirs], [tl.to_numpy(w).ravel() for w in before]
    if [w.shape for w in theirs] != [w.shape for w in before]:
        return None
    theirs, before = np.concatenate(theirs), np.concatenate(before)
    return float(np.linalg.norm(theirs - before) / np.linalg.norm(before))


def probe_fine_tune(ns, framework):
    tl = helpers(framework)
    factor = callable_(ns, "lr_factor")
    schedules = {str(total): [float(factor(step, total)) for step in range(total)] for total in SCHEDULE_TOTALS}
    logits = np.asarray(tl.to_numpy(callable_(ns, "classify_texts")(require(ns, "fine_tuned"), _holdout_texts())))
    theirs = _pooled(_last_hidden(require(ns, "encoder"), ENCODER_TEXTS, framework))
    pristine = _pooled(_last_hidden(_pristine(framework), ENCODER_TEXTS, framework))
    return {"schedules": schedules, "holdout_shape": list(logits.shape),
            "holdout_predictions": logits.argmax(axis=1).tolist() if logits.ndim == 2 else [],
            "encoder_change": float(np.abs(theirs - pristine).max()),
            "top_drift": _top_drift(require(ns, "fine_tuned"), framework)}


# ===== judges: below this line, never in the learner's kernel (make lessons copies only what is above) =====

from tlkit.data import load_dataset
from tlkit.text import load_tokenizer

from ..rubric import close

HEAD_MIN_ACCURACY = 0.85  # held-out accuracy of the trained head: clearly below what the lesson's head reaches
FINE_TUNE_MIN_ACCURACY = 0.85  # the same for the fine-tuned model
ENCODER_TOLERANCE = 1e-4
TOP_MAX_DRIFT = 0.5  # relative change of the top layer's weights: a small rate moves them far less


def _reference_tokens(max_length: int) -> tuple[np.ndarray, np.ndarray]:
    batch = load_tokenizer(ENCODER)(list(TOKENIZE_TEXTS), padding=True, truncation=True, max_length=max_length,
                                    return_tensors="np")
    return batch["input_ids"], batch["attention_mask"]


def _vocabulary_problem(ids: np.ndarray, untruncated: list, max_length: int) -> str | None:
    """What is wrong with the ids of the texts that fit in max_length (padding set aside), if anything."""
    for row, want in zip(ids, untruncated):
        want = list(np.trim_zeros(np.asarray(want), "b"))
        if len(want) > max_length:
            continue
        theirs = list(np.trim_zeros(np.asarray(row), "b"))
        if theirs == want:
            continue
        if theirs == want[1:-1]:
            return ("`tokenize`'s texts do not start with [CLS] and end with [SEP]: keep the special tokens the "
                    "model was trained with.")
        return ("`tokenize`'s ids are not those of all-MiniLM-L6-v2's vocabulary: is it another model's tokenizer? "
                "Ids are rows of the encoder's embedding table; use the tokenizer it was trained with (the "
                "`tokenizer` argument).")
    return None


def judge_tokenize(obs):
    msgs = []
    for call, max_length in zip(obs["calls"], TOKENIZE_LENGTHS):
        ids, mask = (np.asarray(call[k]) for k in ("input_ids", "attention_mask"))
        want_ids, want_mask = _reference_tokens(max_length)
        untruncated = load_tokenizer(ENCODER)(list(TOKENIZE_TEXTS), padding=True)["input_ids"]
        problem = None  # the ids of another vocabulary: their mask is not the reference's either
        if ids.ndim != 2 or ids.shape[0] != len(TOKENIZE_TEXTS) or mask.shape != ids.shape:
            msgs.append(f"`tokenize` should give ids and a mask of one row per text, alike: got {ids.shape} and "
                        f"{mask.shape} for {len(TOKENIZE_TEXTS)} texts.")
        elif ids.shape[1] > max_length:
            msgs.append(f"`tokenize(..., max_length={max_length})` gave {ids.shape[1]} tokens per text: the long "
                        "text was not truncated (truncation=True cuts it at max_length).")
        elif ids.shape[1] == max_length > want_ids.shape[1]:
            msgs.append(f"`tokenize` padded every text to max_length ({max_length}) tokens: pad to the longest text "
                        f"of the call ({want_ids.shape[1]} here), padding=True.")
        elif problem := _vocabulary_problem(ids, untruncated, max_length):
            msgs.append(problem)
        elif ids.shape != want_ids.shape or not np.array_equal(ids, want_ids):
            msgs.append(f"`tokenize(..., max_length={max_length})` should give ids of shape {want_ids.shape} "
                        f"(padded to the longest text, at most max_length), got {ids.shape}.")
        if not problem and mask.shape == want_mask.shape and not np.array_equal(mask, want_mask):
            if (mask == 1).all():
                msgs.append("`tokenize`'s attention mask is all ones: padding is then treated as real tokens. Use "
                            "the tokenizer's mask: 1 on real tokens, 0 on [PAD].")
            else:
                msgs.append("`tokenize`'s attention mask should be 1 on each text's real tokens and 0 on padding.")
        if len(untruncated[2]) <= max_length and not msgs and ids.shape[1] != len(untruncated[2]):
            msgs.append("`tokenize` should pad to the longest text of the call.")
        if not msgs and not all(d.startswith("int") for d in call["dtypes"]):
            msgs.append(f"`tokenize` should return integer ids and mask (int64), not {call['dtypes']}.")
        if msgs:
            break
    return msgs


def _masked_mean(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)


def judge_mean_pool(obs):
    pooled = np.asarray(obs["pooled"], dtype=float)
    want = _masked_mean(POOL_HIDDEN, POOL_MASK)
    if pooled.shape != want.shape:
        return [f"`mean_pool` should return one vector per text, {want.shape} here; got {pooled.shape}."]
    if not np.allclose(pooled, want, atol=1e-5):
        if np.allclose(pooled, POOL_HIDDEN.mean(axis=1), atol=1e-5):
            return [("`mean_pool` averages over every position, padding included: a text's embedding then depends "
                    "on how much padding its batch gave it. Average only where the attention mask is 1.")]
        if np.allclose(pooled, (POOL_HIDDEN * POOL_MASK[..., None]).sum(1) / POOL_MASK.shape[1], atol=1e-5):
            return [("`mean_pool` zeroes the padding but divides by every position: divide by the number of real "
                    "tokens (the mask's sum per text).")]
        if np.allclose(pooled, (POOL_HIDDEN * POOL_MASK[..., None]).sum(1), atol=1e-4):
            return ["`mean_pool` sums the real tokens: divide by their number for the mean."]
        return ["`mean_pool` should give, per text, the mean of the token vectors where the mask is 1."]
    if obs["gradient"] is None:
        return [("No gradient reaches the token vectors through `mean_pool` (computed outside the framework, e.g. "
                f"in NumPy?), so Part E could not train through it: {obs['gradient_error']}")]
    expected = POOL_MASK[..., None] * POOL_WEIGHTS[:, None, :] / POOL_MASK.sum(1)[:, None, None]
    if not np.allclose(np.asarray(obs["gradient"], dtype=float), expected, atol=1e-5):
        return [("`mean_pool` gives the right values but the wrong gradient (detached somewhere?): padding must get "
                "zero gradient and each real token 1/(number of real tokens).")]
    return []


def _accuracy(predictions) -> float:
    return float(np.mean(np.asarray(predictions) == load_dataset(DATASET, "holdout").y))


def judge_head(obs):
    msgs = []
    out = np.asarray(obs["fresh_outputs"] if obs.get("fresh_outputs") is not None else [], dtype=float)
    if obs.get("fresh_error"):
        msgs.append("`build_head(16, 3)` cannot take 16 features: build the layer from its arguments, n_features "
                    f"and n_classes, not from fixed sizes ({obs['fresh_error']}).")
    elif out.shape != (5, 3):
        msgs.append(f"`build_head(16, 3)` gave outputs of shape {out.shape} for 5 embeddings; expected (5, 3): one "
                    "logit per class, for any n_features and n_classes.")
    elif np.allclose(out.sum(axis=1), 1, atol=1e-4) and (out >= 0).all():
        msgs.append("Your head ends with a softmax, and the cross-entropy applies one again: the loss barely moves "
                    "and training crawls. End with a linear layer that outputs logits.")
    elif (out > 0).all() and (out < 1).all():
        msgs.append("Your head squashes its outputs into (0, 1) (a sigmoid?): output logits, with no activation.")
    holdout = load_dataset(DATASET, "holdout")
    if obs["holdout_shape"] != [len(holdout.y), len(holdout.classes)]:
        msgs.append(f"Your trained `head` gives outputs of shape {obs['holdout_shape']} for {len(holdout.y)} "
                    f"articles; expected one logit per topic ({len(holdout.classes)}).")
    elif not msgs and (score := _accuracy(obs["holdout_predictions"])) < HEAD_MIN_ACCURACY:
        msgs.append(f"Your trained `head` classifies unseen articles poorly (accuracy {score:.3f}, below the "
                    f"{HEAD_MIN_ACCURACY:.2f} a trained linear head reaches). Did the training lines run?")
    return msgs


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return -(z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(axis=1)))


def _expected(logits) -> tuple[float, float, float]:
    """(mean loss over examples, mean of batch means, accuracy) from eval-mode logits."""
    logits = np.asarray(logits, dtype=float)
    losses = _cross_entropy(logits, EVAL_Y)
    batch_means = [losses[i:i + EVAL_BATCH].mean() for i in range(0, len(losses), EVAL_BATCH)]
    return float(losses.mean()), float(np.mean(batch_means)), float(np.mean(logits.argmax(1) == EVAL_Y))


def judge_evaluate(obs):
    msgs = []
    base, confident = obs["base"], obs["confident"]
    if any(run["first"] != run["second"] for run in (base, confident)):
        return [("`evaluate` gives a different result each time it is called on the same model: it evaluates in "
                "training mode, with dropout on. Turn dropout off while evaluating: `model.eval()` (then restore "
                 "the mode) in PyTorch, `model(x, training=False)` in Keras.")]
    loss, accuracy = base["first"]
    per_example, per_batch, want_accuracy = _expected(base["logits"])
    want_loss = (per_example, per_batch)
    other = _expected(confident["logits"])
    if not any(close(loss, w, 1e-4) for w in want_loss):
        if close(loss, confident["first"][0], 1e-6) and not close(per_example, other[0], 1e-3):
            msgs.append("`evaluate`'s loss does not change when the model grows three times more confident: it is "
                        "computed on the argmax predictions, which throw the logits away (the widely copied "
                        "`criterion(logits.argmax(-1), labels)` bug). Compute the cross-entropy from the logits.")
        else:
            msgs.append(f"`evaluate`'s loss should be the mean cross-entropy of the logits ({per_example:.4f} on the "
                        f"probe's small model, dropout off); got {loss:.4f}.")
    if not close(accuracy, want_accuracy, 1e-6):
        msgs.append("`evaluate`'s accuracy should be the fraction of examples whose argmax is the label.")
    if base["training_after"] is False:
        msgs.append("`evaluate` leaves the model in eval mode: put it back in the mode it was in "
                    "(`model.train(was_training)`), or the training that follows runs without dropout.")
    return msgs


def _schedule_problems(values: list, total: int) -> list:
    f = np.asarray(values, dtype=float)
    warmup = int(0.1 * total)
    peak = int(np.argmax(f))
    msgs = []
    if np.allclose(f, f[0], atol=1e-6):
        return [("`lr_factor` is constant: no warm-up and no decay. Raise it from 0 over the first 10 % of the "
                "steps, then let it fall linearly to 0.")]
    if f[0] > 0.1 or abs(peak - warmup) > 1 or np.any(np.diff(f[:peak + 1]) < -1e-9):
        msgs.append(f"`lr_factor` should warm up linearly from 0 to 1 over the first 10 % of the steps (to step "
                    f"{warmup} of {total}).")
    if abs(f.max() - 1) > 0.02:
        msgs.append(f"`lr_factor` should reach 1 (the full rates) after the warm-up; its largest value is "
                    f"{f.max():.3f}.")
    tail = f[peak:]
    middle = warmup + (total - warmup) // 2
    if np.any(np.diff(tail) > 1e-9) or f[-1] > 0.05 or abs(f[middle] - (total - middle) / (total - warmup)) > 0.03:
        msgs.append("`lr_factor` should fall linearly from 1 after the warm-up to 0 at the last step.")
    return msgs


def judge_fine_tune(obs):
    msgs = []
    for total in SCHEDULE_TOTALS:
        msgs = _schedule_problems(obs["schedules"][str(total)], total)
        if msgs:
            break
    if obs["encoder_change"] > ENCODER_TOLERANCE:
        msgs.append("The frozen `encoder` changed: its lower layers (cached once) must stay pretrained. Fine-tune "
                    "the model's copy of the top layer only.")
    if obs.get("top_drift") is not None and obs["top_drift"] > TOP_MAX_DRIFT:
        msgs.append(f"The fine-tuned top layer moved far from its pretrained weights (by {obs['top_drift']:.0%} of "
                    "their norm): a learning rate that large (1e-2, say) overwrites what the layer learned. Give the "
                    "pretrained layer the small rate (lr_top) and the new head the larger one (lr_head).")
    holdout = load_dataset(DATASET, "holdout")
    if obs["holdout_shape"] != [len(holdout.y), len(holdout.classes)]:
        msgs.append(f"`classify_texts(fine_tuned, ...)` gives outputs of shape {obs['holdout_shape']} for "
                    f"{len(holdout.y)} articles; expected one logit per topic ({len(holdout.classes)}).")
    elif not msgs and (score := _accuracy(obs["holdout_predictions"])) < FINE_TUNE_MIN_ACCURACY:
        msgs.append(f"Your `fine_tuned` model classifies unseen articles poorly (accuracy {score:.3f}, below the "
                    f"{FINE_TUNE_MIN_ACCURACY:.2f} that fine-tuning reaches). Did the fine-tuning run, with the small "
                    "rate for the top layer, the larger one for the head, and the warm-up?")
    return msgs


# ===== test cases: read by tests/ only =====

# The end of the `head` answer cell, the same in both frameworks: it trains the learner's head.
TRAIN_HEAD = """

# Train your head on the frozen embeddings (given):
tl.seed_everything(SEED)
head = build_head(emb["train"].shape[1], n_classes)
head_train = tl.make_batches(emb["train"], y_train, batch_size=16, shuffle=True, seed=SEED, scale=1)
head_val = tl.make_batches(emb["val"], y_val, batch_size=100, scale=1)
history_head = tl.fit(head, head_train, head_val, epochs=40, lr=1e-3)
"""
# The end of the `fine_tune` answer cell, per framework.
RUN_FINE_TUNE = {
    "pytorch": """

# Fine-tune (given):
tl.seed_everything(SEED)
fine_tuned = TopLayerClassifier(encoder.encoder.layer[-1], n_classes).to(device)
history_ft = fine_tune(fine_tuned, ft_train, ft_val, EPOCHS, LR_TOP, LR_HEAD)
""",
    "keras": """

# Fine-tune (given):
tl.seed_everything(SEED)
fine_tuned = TopLayerClassifier(encoder.encoder_layers[-1], n_classes)
history_ft = fine_tune(fine_tuned, ft_train, ft_val, EPOCHS, LR_TOP, LR_HEAD)
""",
}
NO_WARMUP = """def lr_factor(step, total_steps):
    return 1.0  # the full rate from the first step
"""

TEST_CASES = {
    "tokenize": {
        "group": "classic",
        "wrong": {  # the tokenizer's mask replaced by ones: padding counted as real tokens
            "pytorch": """def tokenize(texts, tokenizer, max_length):
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": torch.ones_like(batch["input_ids"])}
""",
            "keras": """def tokenize(texts, tokenizer, max_length):
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np")
    return {"input_ids": batch["input_ids"], "attention_mask": np.ones_like(batch["input_ids"])}
"""},
        "valid": {
            "pytorch": ("each text encoded alone, then padded by hand into tensors", """
def tokenize(texts, tokenizer, max_length):
    encoded = [tokenizer.encode(text, truncation=True, max_length=max_length) for text in texts]
    longest = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), longest), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), longest), dtype=torch.long)
    for row, e in enumerate(encoded):
        ids[row, :len(e)] = torch.tensor(e)
        mask[row, :len(e)] = 1
    return {"input_ids": ids, "attention_mask": mask}
"""),
            "keras": ("each text encoded alone, then padded by hand into NumPy arrays", """
def tokenize(texts, tokenizer, max_length):
    encoded = [tokenizer(text, truncation=True, max_length=max_length)["input_ids"] for text in texts]
    longest = max(map(len, encoded))
    ids = np.full((len(encoded), longest), tokenizer.pad_token_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, e in enumerate(encoded):
        ids[row, :len(e)], mask[row, :len(e)] = e, 1
    return {"input_ids": ids, "attention_mask": mask}
"""),
        },
    },
    "mean_pool": {
        "group": "classic",
        "wrong": {  # a plain mean over every position: padding averaged in
            "pytorch": """def mean_pool(hidden, attention_mask):
    return hidden.mean(dim=1)
""",
            "keras": """def mean_pool(hidden, attention_mask):
    return ops.mean(hidden, axis=1)
"""},
        "valid": {
            "pytorch": ("an einsum over the tokens, divided by the mask's row sums", """
def mean_pool(hidden, attention_mask):
    mask = attention_mask.to(hidden.dtype)
    return torch.einsum("btd,bt->bd", hidden, mask) / mask.sum(dim=1, keepdim=True)
"""),
            "keras": ("an einsum over the tokens, divided by the mask's row sums", """
def mean_pool(hidden, attention_mask):
    mask = ops.cast(attention_mask, "float32")
    return ops.einsum("btd,bt->bd", hidden, mask) / ops.sum(mask, axis=1, keepdims=True)
"""),
        },
    },
    "head": {
        "group": "classic",
        "wrong": {  # a softmax at the end, and the from-logits cross-entropy of tl.fit applies another
            "pytorch": """def build_head(n_features, n_classes):
    return torch.nn.Sequential(torch.nn.Linear(n_features, n_classes), torch.nn.Softmax(dim=-1))
""" + TRAIN_HEAD,
            "keras": """def build_head(n_features, n_classes):
    return keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(n_classes, activation="softmax")])
""" + TRAIN_HEAD},
        "valid": {
            "pytorch": ("a custom nn.Module holding the linear layer", """
class TopicHead(torch.nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.fc = torch.nn.Linear(n_features, n_classes)

    def forward(self, x):
        return self.fc(x)


def build_head(n_features, n_classes):
    return TopicHead(n_features, n_classes)
""" + TRAIN_HEAD),
            "keras": ("the functional API", """
def build_head(n_features, n_classes):
    inputs = keras.Input(shape=(n_features,))
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation=None)(inputs))
""" + TRAIN_HEAD),
        },
    },
    "evaluate": {
        "group": "classic",
        "wrong": {  # the widely copied bug: the loss computed on the argmax predictions
            "pytorch": """def evaluate(model, batches):
    criterion = torch.nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    losses, correct, seen = [], 0, 0
    with torch.no_grad():
        for *inputs, labels in batches:
            logits = model(*inputs)
            predictions = logits.argmax(-1)
            losses.append(criterion(predictions.float(), labels.float()).item())
            correct += (predictions == labels).sum().item()
            seen += len(labels)
    model.train(was_training)
    return float(np.mean(losses)), correct / seen
""",
            "keras": """def evaluate(model, batches):
    criterion = keras.losses.CategoricalCrossentropy(from_logits=True)
    losses, correct, seen = [], 0, 0
    for *inputs, labels in batches:
        logits = model(*inputs, training=False)
        predictions = ops.argmax(logits, axis=-1)
        n = logits.shape[-1]
        losses.append(float(tl.to_numpy(criterion(ops.one_hot(labels, n), ops.one_hot(predictions, n)))))
        correct += int((tl.to_numpy(predictions) == np.asarray(labels)).sum())
        seen += len(labels)
    return float(np.mean(losses)), correct / seen
"""},
        "valid": {
            "pytorch": ("every batch's logits gathered first, then one cross-entropy; inference_mode", """
def evaluate(model, batches):
    mode = model.training
    model.eval()
    all_logits, all_labels = [], []
    with torch.inference_mode():
        for batch in batches:
            inputs, labels = batch[:-1], batch[-1]
            all_logits.append(model(*[t.to(tl.model_device(model)) for t in inputs]).cpu())
            all_labels.append(labels)
    model.train(mode)
    logits, labels = torch.cat(all_logits), torch.cat(all_labels)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    return loss.item(), (logits.argmax(dim=1) == labels).float().mean().item()
"""),
            "keras": ("every batch's logits gathered first, then a NumPy log-softmax", """
def evaluate(model, batches):
    logits, labels = [], []
    for batch in batches:
        logits.append(tl.to_numpy(model(*batch[:-1], training=False)))
        labels.append(np.asarray(batch[-1]))
    z, y = np.concatenate(logits).astype(np.float64), np.concatenate(labels)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(y)), y].mean()), float((z.argmax(axis=1) == y).mean())
"""),
        },
    },
    "fine_tune": {
        "group": "classic",
        "wrong": {  # every parameter at one large rate, no warm-up
            "pytorch": NO_WARMUP + """

def fine_tune(model, train_batches, val_batches, epochs, lr_top, lr_head):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)  # one rate for everything
    history = {"loss": [], "val_loss": [], "val_accuracy": []}
    for _ in tqdm(range(epochs)):
        model.train()
        losses = []
        for hidden, mask, labels in train_batches:
            loss = torch.nn.functional.cross_entropy(model(hidden, mask), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(h, m) for h, m, _ in val_batches])
            labels = torch.cat([y for _, _, y in val_batches])
        history["loss"].append(float(np.mean(losses)))
        history["val_loss"].append(torch.nn.functional.cross_entropy(logits, labels).item())
        history["val_accuracy"].append((logits.argmax(1) == labels).float().mean().item())
    return history
""" + RUN_FINE_TUNE["pytorch"],
            "keras": NO_WARMUP + """

def fine_tune(model, train_batches, val_batches, epochs, lr_top, lr_head):
    optimizer = keras.optimizers.AdamW(learning_rate=1e-2)  # one rate for everything
    variables = model.trainable_variables
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    history = {"loss": [], "val_loss": [], "val_accuracy": []}
    for _ in tqdm(range(epochs)):
        losses = []
        for hidden, mask, labels in train_batches:
            loss, gradients = tl.loss_gradients(lambda: loss_fn(labels, model(hidden, mask, training=True)), variables)
            optimizer.apply(gradients, variables)
            losses.append(float(tl.to_numpy(loss)))
        logits = np.concatenate([tl.to_numpy(model(h, m, training=False)) for h, m, _ in val_batches])
        labels = np.concatenate([y for _, _, y in val_batches])
        history["loss"].append(float(np.mean(losses)))
        history["val_loss"].append(float(tl.to_numpy(loss_fn(labels, logits))))
        history["val_accuracy"].append(float((logits.argmax(1) == labels).mean()))
    return history
""" + RUN_FINE_TUNE["keras"]},
        "valid": {
            "pytorch": ("the schedule in one min(); parameter groups by name; rates set by hand each step", """
def lr_factor(step, total_steps):
    warmup = int(0.1 * total_steps)
    return min(step / max(warmup, 1), (total_steps - step) / (total_steps - warmup))


def fine_tune(model, train_batches, val_batches, epochs, lr_top, lr_head):
    model.to(device)
    top = [p for name, p in model.named_parameters() if name.startswith("top.")]
    head = [p for name, p in model.named_parameters() if name.startswith("head.")]
    optimizer = torch.optim.AdamW([{"params": top, "base": lr_top}, {"params": head, "base": lr_head}], lr=0.0)
    total, step = epochs * len(train_batches), 0
    history = {"loss": [], "val_loss": [], "val_accuracy": []}
    for _ in tqdm(range(epochs), desc="fine-tuning"):
        model.train()
        epoch_losses = []
        for hidden, mask, labels in train_batches:
            for group in optimizer.param_groups:
                group["lr"] = group["base"] * lr_factor(step, total)
            loss = torch.nn.functional.cross_entropy(model(hidden.to(device), mask.to(device)), labels.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            epoch_losses.append(loss.item())
        val_loss, val_accuracy = 0.0, 0.0
        model.eval()
        with torch.no_grad():
            n = 0
            for hidden, mask, labels in val_batches:
                logits = model(hidden.to(device), mask.to(device)).cpu()
                val_loss += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
                val_accuracy += (logits.argmax(-1) == labels).sum().item()
                n += len(labels)
        history["loss"].append(sum(epoch_losses) / len(epoch_losses))
        history["val_loss"].append(val_loss / n)
        history["val_accuracy"].append(val_accuracy / n)
    return history
""" + RUN_FINE_TUNE["pytorch"]),
            "keras": ("the schedule in one min(); one optimizer per part, its rate set by hand each step", """
def lr_factor(step, total_steps):
    warmup = int(0.1 * total_steps)
    return min(step / max(warmup, 1), (total_steps - step) / (total_steps - warmup))


def fine_tune(model, train_batches, val_batches, epochs, lr_top, lr_head):
    parts = [(model.top.trainable_variables, lr_top, keras.optimizers.AdamW(learning_rate=lr_top)),
             (model.head.trainable_variables, lr_head, keras.optimizers.AdamW(learning_rate=lr_head))]
    variables = [v for part, _, _ in parts for v in part]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    total, step = epochs * len(train_batches), 0
    history = {"loss": [], "val_loss": [], "val_accuracy": []}
    for _ in tqdm(range(epochs), desc="fine-tuning"):
        losses = []
        for hidden, mask, labels in train_batches:
            loss, gradients = tl.loss_gradients(lambda: loss_fn(labels, model(hidden, mask, training=True)), variables)
            start = 0
            for part, base, optimizer in parts:
                optimizer.learning_rate = base * lr_factor(step, total)
                optimizer.apply(gradients[start:start + len(part)], part)
                start += len(part)
            step += 1
            losses.append(float(tl.to_numpy(loss)))
        logits = np.concatenate([tl.to_numpy(model(h, m, training=False)) for h, m, _ in val_batches])
        labels = np.concatenate([y for _, _, y in val_batches])
        history["loss"].append(float(np.mean(losses)))
        history["val_loss"].append(float(tl.to_numpy(loss_fn(labels, logits))))
        history["val_accuracy"].append(float((logits.argmax(1) == labels).mean()))
    return history
""" + RUN_FINE_TUNE["keras"]),
        },
    },
}
