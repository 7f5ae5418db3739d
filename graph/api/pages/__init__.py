"""The pages people use: the storefront chat widget (``/``), the manager inbox
(``/manager``) and the analyst dashboard (``/analyst``): server-rendered templates and plain
JavaScript served from this package (no build step, nothing fetched at run time)."""
