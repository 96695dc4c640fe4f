"""netspec's language server: `netspec lsp` (netspec.lsp.server, on pygls) over what
netspec.lsp.analysis knows of a document (importable without pygls)."""
