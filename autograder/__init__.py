"""The course autograder: runs a learner's notebook, observes it, judges it.

Learner code runs only in a Jupyter kernel started by a separate worker process
(:mod:`autograder.runner`). Hidden checks come in two halves: *probes*
(:mod:`autograder.probes`) run in the kernel and only collect plain-data
observations; *rubrics* (:mod:`autograder.rubrics`) hold the expectations and
decide pass/fail in the grading process, which never runs learner code.
"""

import sys

# nbformat imports jsonschema, whose format checker imports rfc3987_syntax, which builds a grammar at import
# (seconds in every worker). Nothing here validates IRIs: tell jsonschema that package is absent.
sys.modules.setdefault("rfc3987_syntax", None)
