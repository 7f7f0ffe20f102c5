"""Lesson 02's realistic wrong answers (merged into wrong_answers.WRONG / GROUPS)."""

L02 = "02_feature_extraction"

ONLY_REQUIRES_GRAD = {
    "pytorch": '''def freeze(backbone):
    backbone.requires_grad_(False)  # no gradients, but batch norm stays in training mode
    return backbone
''',
    "keras": '''def freeze(backbone):
    for layer in backbone.layers:  # the old advice: freeze everything but batch norm
        if not isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return backbone
''',
}

FEATURES_WRONG_MODE = {
    "pytorch": '''def extract_features(backbone, images, batch_size=64):
    device = next(backbone.parameters()).device
    chunks = []
    with torch.no_grad():  # no gradients, but the backbone is left in whatever mode it was (no eval())
        for start in range(0, len(images), batch_size):
            x = tl.preprocess_inputs(images[start:start + batch_size], size=IMAGE_SIZE).to(device)
            chunks.append(backbone(x).cpu().numpy())
    return np.concatenate(chunks)
''',
    "keras": '''def extract_features(backbone, images, batch_size=64):
    chunks = []
    for start in range(0, len(images), batch_size):
        x = tl.to_inputs(images[start:start + batch_size])  # pixels in [0, 1], not the backbone's preprocessing
        chunks.append(keras.ops.convert_to_numpy(backbone(x, training=False)))
    return np.concatenate(chunks)
''',
}

HEAD_NOT_TRAINED = {
    "pytorch": '''tl.seed_everything(0)
head = torch.nn.Linear(1280, len(ds.classes))
# a learning rate far too small
head_history = tl.fit(head, train_feature_batches, val_feature_batches, epochs=2, lr=1e-6)
''',
    "keras": '''tl.seed_everything(0)
head = keras.Sequential([keras.Input((1280,)), keras.layers.Dense(len(ds.classes))])
# a learning rate far too small
head_history = tl.fit(head, train_feature_batches, val_feature_batches, epochs=2, lr=1e-6)
''',
}

SCRATCH_FLATTEN = {
    "pytorch": '''import math


def build_small_cnn(input_shape, n_classes):
    return torch.nn.Sequential(
        torch.nn.Conv2d(input_shape[0], 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(),  # flattens the 16x16x64 map instead of global average pooling
        torch.nn.Linear(64 * (input_shape[1] // 4) * (input_shape[2] // 4), n_classes),
    )


tl.seed_everything(0)
scratch_model = build_small_cnn(input_shape, len(ds.classes))
scratch_history = tl.fit(scratch_model, train_batches, val_batches, epochs=5, lr=3e-3)
''',
    "keras": '''def build_small_cnn(input_shape, n_classes):
    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),  # flattens the 16x16x64 map instead of global average pooling
        keras.layers.Dense(n_classes),
    ])


tl.seed_everything(0)
scratch_model = build_small_cnn(input_shape, len(ds.classes))
scratch_history = tl.fit(scratch_model, train_batches, val_batches, epochs=5, lr=3e-3)
''',
}

WRONG = {
    (L02, "freeze"): ONLY_REQUIRES_GRAD,
    (L02, "features"): FEATURES_WRONG_MODE,
    (L02, "head"): HEAD_NOT_TRAINED,
    (L02, "scratch"): SCRATCH_FLATTEN,
}

# features and head are wrong together: the head trains on the features the learner's function computes.
GROUPS = {L02: [["freeze", "scratch"], ["features", "head"]]}
