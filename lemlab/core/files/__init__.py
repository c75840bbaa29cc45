"""Files users hand lemlab and files its runs write: tolerant reading,
the overwrite check, and where a resumable run keeps its output."""
