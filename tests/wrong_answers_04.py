"""Lesson 04's realistic wrong answers (merged into wrong_answers.WRONG / GROUPS)."""

L04 = "04_multi_task"

HEADS_SWAPPED = {
    "pytorch": '''class MultiTaskNet(torch.nn.Module):
    def __init__(self, input_shape, n_classes):
        super().__init__()
        channels, height, width = input_shape
        self.trunk = torch.nn.Sequential(
            torch.nn.Conv2d(channels, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(16 * (height // 4) * (width // 4), 64), torch.nn.ReLU())
        self.left = torch.nn.Linear(64, n_classes[0])
        self.right = torch.nn.Linear(64, n_classes[1])

    def forward(self, x):
        features = self.trunk(x)
        return self.right(features), self.left(features)  # the heads in the wrong order


def build_multitask(input_shape, n_classes):
    return MultiTaskNet(input_shape, n_classes)
''',
    "keras": '''def build_multitask(input_shape, n_classes):
    inputs = keras.Input(shape=input_shape)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    features = keras.layers.Dense(64, activation="relu")(h)
    left = keras.layers.Dense(n_classes[0], name="left_head")(features)
    right = keras.layers.Dense(n_classes[1], name="right_head")(features)
    return keras.Model(inputs, {"left": right, "right": left})  # output names mapped to the wrong heads
''',
}

WEIGHTS_IGNORED = {
    "pytorch": '''def weighted_loss(outputs, labels, weights):
    return sum(torch.nn.functional.cross_entropy(out, labels[:, i])  # the weights never enter
               for i, out in enumerate(outputs))
''',
    "keras": '''def compile_weighted(model, weights, lr=LR):
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss={"left": cross_entropy, "right": cross_entropy})  # no loss_weights
    return model
''',
}

UNCERTAINTY_WRONG = {
    "pytorch": '''class UncertaintyWeighting(torch.nn.Module):
    def __init__(self, n_tasks):
        super().__init__()
        self.register_buffer("log_vars", torch.zeros(n_tasks))  # a buffer: moves with the module, never learns

    def forward(self, losses):
        losses = torch.stack(list(losses))
        return torch.sum(torch.exp(-self.log_vars) * losses + self.log_vars)
''',
    "keras": '''class UncertaintyWeighting(keras.layers.Layer):
    def __init__(self, n_tasks, **kwargs):
        super().__init__(**kwargs)
        self.log_vars = self.add_weight(shape=(n_tasks,), initializer="zeros", trainable=True, name="log_vars")

    def call(self, losses):
        losses = keras.ops.stack(list(losses))
        return keras.ops.sum(keras.ops.exp(-self.log_vars) * losses)  # no + s_i: s_i can run to infinity
''',
}

PCGRAD_WRONG = {
    "pytorch": '''def pcgrad_project(g, other):
    return g - torch.dot(g, other) / torch.dot(other, other) * other  # projects even when they do not conflict
''',
    "keras": '''def pcgrad_project(g, other):
    dot = keras.ops.sum(g * other)
    projected = g - dot / keras.ops.sum(other * other) * other
    return keras.ops.where(dot > 0, projected, g)  # the condition the wrong way round
''',
}

WRONG = {
    (L04, "multitask_model"): HEADS_SWAPPED,
    (L04, "weighted_loss"): WEIGHTS_IGNORED,
    (L04, "uncertainty"): UNCERTAINTY_WRONG,
    (L04, "pcgrad"): PCGRAD_WRONG,
}

GROUPS = {L04: [["multitask_model", "uncertainty"], ["weighted_loss", "pcgrad"]]}
