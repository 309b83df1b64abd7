//! docs/agents.md: every JSON and TOML configuration it shows parses, and every MCP server entry
//! in them starts `warden ... mcp`. Reads the document only; runs nothing.

use std::fs;

use warden_e2e::workspace_root;

/// The fenced blocks of `markdown` whose info string is `lang`, in order.
fn fenced_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match current.as_mut() {
            None => {
                if trimmed
                    .strip_prefix("```")
                    .is_some_and(|info| info.trim() == lang)
                {
                    current = Some(String::new());
                }
            }
            Some(block) => {
                if trimmed.starts_with("```") {
                    blocks.push(std::mem::take(block));
                    current = None;
                } else {
                    block.push_str(line);
                    block.push('\n');
                }
            }
        }
    }
    assert!(
        current.is_none(),
        "an unclosed ```{lang} block in docs/agents.md"
    );
    blocks
}

fn agents_doc() -> String {
    let path = workspace_root().join("docs/agents.md");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A command line is `warden`, then global options, then the `mcp` subcommand.
fn assert_warden_mcp(argv: &[String], block: &str) {
    assert_eq!(argv.first().map(String::as_str), Some("warden"), "{block}");
    let mcp = argv.iter().position(|a| a == "mcp");
    assert!(mcp.is_some(), "no `mcp` subcommand in {argv:?}:\n{block}");
    // `--root` and `--policy` take a value; nothing else may stand before `mcp`.
    let mut i = 1;
    while i < mcp.unwrap_or(0) {
        match argv[i].as_str() {
            "--root" | "--policy" => i += 2,
            other => panic!("unexpected `{other}` before `mcp` in {argv:?}:\n{block}"),
        }
    }
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("not a string: {v}"))
                .to_owned()
        })
        .collect()
}

#[test]
fn json_blocks_parse_and_name_warden_mcp() {
    let doc = agents_doc();
    let blocks = fenced_blocks(&doc, "json");
    let (mut opencode, mut claude, mut claude_settings) = (0, 0, 0);
    for block in &blocks {
        let value: serde_json::Value = serde_json::from_str(block)
            .unwrap_or_else(|e| panic!("a ```json block does not parse: {e}\n{block}"));
        if let Some(server) = value.pointer("/mcp/warden") {
            // OpenCode: the whole command line in `command`.
            assert_eq!(server["type"], "local", "{block}");
            assert_warden_mcp(&strings(&server["command"]), block);
            let bash = value
                .pointer("/permission/bash")
                .expect("no permission.bash");
            for pattern in ["pytest*", "python -m pytest*", "python3 -m pytest*"] {
                assert_eq!(bash[pattern], "deny", "{pattern} not denied:\n{block}");
            }
            opencode += 1;
        } else if let Some(server) = value.pointer("/mcpServers/warden") {
            // Claude Code: `command` and `args`.
            let mut argv = vec![server["command"].as_str().expect("command").to_owned()];
            argv.extend(strings(&server["args"]));
            assert_warden_mcp(&argv, block);
            claude += 1;
        } else if let Some(deny) = value.pointer("/permissions/deny") {
            let deny = strings(deny);
            for rule in [
                "Bash(pytest:*)",
                "Bash(python -m pytest:*)",
                "Bash(python3 -m pytest:*)",
            ] {
                assert!(
                    deny.iter().any(|r| r == rule),
                    "{rule} not denied:\n{block}"
                );
            }
            claude_settings += 1;
        } else {
            panic!("a ```json block that configures no agent:\n{block}");
        }
    }
    assert_eq!(
        (opencode, claude, claude_settings),
        (1, 1, 1),
        "{} json blocks",
        blocks.len()
    );
}

#[test]
fn toml_blocks_parse_and_name_warden_mcp() {
    let doc = agents_doc();
    let blocks = fenced_blocks(&doc, "toml");
    assert!(!blocks.is_empty(), "no ```toml block in docs/agents.md");
    for block in &blocks {
        let table: toml::Table = toml::from_str(block)
            .unwrap_or_else(|e| panic!("a ```toml block does not parse: {e}\n{block}"));
        let server = table
            .get("mcp_servers")
            .and_then(|s| s.get("warden"))
            .unwrap_or_else(|| panic!("no [mcp_servers.warden]:\n{block}"));
        let mut argv = vec![
            server
                .get("command")
                .and_then(toml::Value::as_str)
                .expect("command")
                .to_owned(),
        ];
        let args = server
            .get("args")
            .and_then(toml::Value::as_array)
            .expect("args");
        argv.extend(
            args.iter()
                .map(|a| a.as_str().expect("a string arg").to_owned()),
        );
        assert_warden_mcp(&argv, block);
    }
}
