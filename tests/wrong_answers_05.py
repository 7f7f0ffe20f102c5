"""Lesson 05's realistic wrong answers (merged into wrong_answers.WRONG / GROUPS): the classic DANN mistakes."""

L05 = "05_domain_adaptation"

SIGN_NOT_REVERSED = {
    "pytorch": '''class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by -lam."""

    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return ctx.lam * grad_output, None  # scaled by lambda, but the sign is not reversed


def grad_reverse(x, lam=1.0):
    return GradientReversal.apply(x, lam)
''',
    "keras": '''class GradientReversal(keras.layers.Layer):
    """Identity forward; backward multiplies the incoming gradient by -lam (a variable: training sets it)."""

    def __init__(self, lam=1.0, **kwargs):
        super().__init__(**kwargs)
        self.lam = self.add_weight(shape=(), initializer=keras.initializers.Constant(lam), trainable=False,
                                   name="lam")

    def call(self, x):
        lam = ops.convert_to_tensor(self.lam)

        @ops.custom_gradient
        def reverse(t):
            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return lam * upstream  # scaled by lambda, but the sign is not reversed

            return ops.copy(t), grad

        return reverse(x)
''',
}

LAMBDA_FIXED_AT_ZERO = '''def dann_lambda(p):
    """The DANN weight of the reversed gradient at training progress p in [0, 1]."""
    return 0.0  # "no domain term until the classifier is good": lambda never leaves 0
'''

TARGET_LABELS_USED = {
    "pytorch": '''def dann_loss(labels, domain, class_logits, domain_logits):
    """(class loss on the source rows, domain loss on all rows) for a mixed batch."""
    class_loss = F.cross_entropy(class_logits, labels)  # every row: the target labels reach the loss
    domain_loss = F.binary_cross_entropy_with_logits(domain_logits.reshape(-1), domain.float())
    return class_loss, domain_loss
''',
    "keras": '''def dann_loss(labels, domain, class_logits, domain_logits):
    """(class loss on the source rows, domain loss on all rows) for a mixed batch."""
    class_loss = ops.mean(ops.sparse_categorical_crossentropy(labels, class_logits, from_logits=True))  # every row
    domain_loss = ops.mean(ops.binary_crossentropy(ops.reshape(ops.cast(domain, "float32"), (-1, 1)), domain_logits,
                                                   from_logits=True))
    return class_loss, domain_loss
''',
}

CORAL_NOT_CENTRED = {
    "pytorch": '''def coral_loss(source_features, target_features):
    """Deep CORAL: squared Frobenius distance of the two covariances / (4 d^2)."""
    def covariance(x):
        return x.T @ x / (x.shape[0] - 1)  # the mean is never subtracted

    d = source_features.shape[1]
    return ((covariance(source_features) - covariance(target_features)) ** 2).sum() / (4 * d * d)
''',
    "keras": '''def coral_loss(source_features, target_features):
    """Deep CORAL: squared Frobenius distance of the two covariances / (4 d^2)."""
    def covariance(x):
        return ops.matmul(ops.transpose(x), x) / (ops.cast(ops.shape(x)[0], x.dtype) - 1.0)  # not centred

    d = ops.cast(ops.shape(source_features)[1], source_features.dtype)
    return ops.sum(ops.square(covariance(source_features) - covariance(target_features))) / (4.0 * d * d)
''',
}

WRONG = {
    (L05, "grl"): SIGN_NOT_REVERSED,
    (L05, "lambda_schedule"): LAMBDA_FIXED_AT_ZERO,
    (L05, "dann"): TARGET_LABELS_USED,
    (L05, "coral"): CORAL_NOT_CENTRED,
}

# The gradient reversal and the schedule feed the DANN training that Part C's trained model is measured on:
# their mistakes are graded together with Part C's; CORAL stands alone.
GROUPS = {L05: [["grl", "lambda_schedule", "dann"], ["coral"]]}
