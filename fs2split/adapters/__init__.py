"""One module per event source: each turns its platform's request into a portable ``Request``
and a ``Response`` back into what the platform expects."""
