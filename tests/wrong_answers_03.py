"""Lesson 03 wrong answers: the classic fine-tuning mistakes (see wrong_answers.py for the format)."""

HEAD_FROZEN_TOO = {
    "pytorch": '''def build_classifier(backbone, n_classes):
    head = torch.nn.Linear(1280, n_classes)
    model = torch.nn.Sequential(OrderedDict(backbone=backbone, head=head))
    for p in model.parameters():  # meant to freeze the backbone, froze the new head as well
        p.requires_grad = False
    return model.eval()


model = build_classifier(backbone, N_CLASSES)
''',
    "keras": '''def build_classifier(backbone, n_classes):
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    outputs = keras.layers.Dense(n_classes, name="head")(backbone(inputs, training=False))
    model = keras.Model(inputs, outputs)
    model.trainable = False  # meant to freeze the backbone, froze the new head as well
    return model


model = build_classifier(backbone, N_CLASSES)
'''}

BN_UPDATED = {
    "pytorch": '''def unfreeze_last_blocks(backbone, n_blocks):
    backbone.requires_grad_(False)
    for module in [*backbone._blocks[-n_blocks:], backbone._conv_head]:
        module.requires_grad_(True)
    backbone.train()  # "training mode for training": batch norm now updates its statistics
    return backbone
''',
    "keras": '''def unfreeze_last_blocks(backbone, n_blocks):
    prefixes = sorted({layer.name[:7] for layer in backbone.layers if layer.name.startswith("block")})
    chosen = tuple(p + "_" for p in prefixes[-n_blocks:]) + ("top_conv", "top_bn")
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = layer.name.startswith(chosen)  # batch-norm layers made trainable too
    return backbone
'''}

ONE_LR_FOR_ALL = {
    "pytorch": '''def make_optimizer(model, lr_head, lr_backbone):
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr_head)
''',
    "keras": '''def make_optimizer(model, lr_head, lr_backbone):
    return keras.optimizers.Adam(learning_rate=lr_head)
'''}

DESTROYING_LR = {
    "pytorch": '''model.head.requires_grad_(True)
unfreeze_last_blocks(model.backbone, N_TOP)
optimizer = make_optimizer(model, lr_head=0.5, lr_backbone=0.5)  # far too high, and no early stopping
history_ft = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
for epoch in tqdm(range(4)):
    forward = lambda a: top(model, a)  # noqa: E731
    scores = (*run_epoch(forward, acts, "train", optimizer, seed=epoch), *run_epoch(forward, acts, "val"))
    for key, value in zip(history_ft, scores):
        history_ft[key].append(value)
''',
    "keras": '''model.trainable = True
unfreeze_last_blocks(model.get_layer(backbone.name), N_TOP)
optimizer = make_optimizer(model, lr_head=0.5, lr_backbone=0.5)  # far too high, and no early stopping
history_ft = train_top(top_model, acts, optimizer, 4, "stage 2")
'''}

WRONG = {
    ("03_fine_tuning", "head_first"): HEAD_FROZEN_TOO,
    ("03_fine_tuning", "unfreeze"): BN_UPDATED,
    ("03_fine_tuning", "param_groups"): ONE_LR_FOR_ALL,
    ("03_fine_tuning", "fine_tune"): DESTROYING_LR,
}

GROUPS = {"03_fine_tuning": [["head_first", "param_groups"], ["unfreeze", "fine_tune"]]}
