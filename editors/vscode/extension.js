// The netspec extension: starts `netspec lsp` (see the README, "netspec lsp") for .net files.
// Highlighting comes from syntaxes/netspec.tmLanguage.json; everything else from the server.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("netspec");
  const serverOptions = {
    command: config.get("server.command", "netspec"),
    args: config.get("server.args", ["lsp"]),
    transport: TransportKind.stdio,
  };
  const clientOptions = {
    documentSelector: [
      { scheme: "file", language: "netspec" },
      { scheme: "untitled", language: "netspec" },
    ],
    initializationOptions: {
      inlayHints: config.get("inlayHints.enabled", true),
      debounce: config.get("debounce", 150),
    },
    synchronize: {
      // workspace/didChangeConfiguration with the `netspec` settings
      configurationSection: "netspec",
      // workspace/didChangeWatchedFiles: a `use`d file changed on disk
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.net"),
    },
  };
  client = new LanguageClient("netspec", "netspec language server", serverOptions, clientOptions);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
