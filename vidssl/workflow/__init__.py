"""Multi-stage workflows (``vidssl workflow``): several commands chained into one
resumable run directory.

- :mod:`~vidssl.workflow.recipe`: workflow recipes (YAML in ``vidssl/configs/workflows``)
  and their ``key=value`` overrides;
- :mod:`~vidssl.workflow.state`: which stage finished, with which settings, how long it
  took (``workflow.json``), and the progress summary;
- :mod:`~vidssl.workflow.la_idt`: the dense-trajectory paper's full method
  (IDT -> Fisher vectors -> Video IR -> Video LA with the IDT prior -> joint tuning);
- :mod:`~vidssl.workflow.analysis`: the clusters of every stage against the labels, and
  cluster montages.
"""
