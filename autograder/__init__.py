"""The course autograder: runs a learner's notebook, observes it, judges it.

Learner code runs only in a Jupyter kernel started by a separate worker process
(:mod:`autograder.runner`). Hidden checks come in two halves: *probes*
(:mod:`autograder.probes`) run in the kernel and only collect plain-data
observations; *rubrics* (:mod:`autograder.rubrics`) hold the expectations and
decide pass/fail in the grading process, which never runs learner code.
"""
