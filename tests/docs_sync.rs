use promote_action::actions::inputs::{INPUTS, OUTPUTS};
use serde_json::Value;

use crate::util::{read, repo_root};

fn action_yml() -> Value {
    serde_saphyr::from_str(&read(&repo_root().join("action.yml"))).expect("action.yml parses")
}

/// Rows of the README table between `<!-- name -->` and `<!-- /name -->`, as cells.
fn readme_table(name: &str) -> Vec<Vec<String>> {
    let readme = read(&repo_root().join("README.md"));
    let start = readme
        .find(&format!("<!-- {name} -->"))
        .unwrap_or_else(|| panic!("README has <!-- {name} -->"));
    let end = readme
        .find(&format!("<!-- /{name} -->"))
        .unwrap_or_else(|| panic!("README has <!-- /{name} -->"));
    readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

fn unquote(cell: &str) -> String {
    cell.trim_matches('`').to_string()
}

#[test]
fn action_yml_declares_exactly_the_inputs_in_code() {
    let action = action_yml();
    let inputs = action["inputs"].as_object().expect("inputs mapping");
    let names: Vec<&str> = inputs.keys().map(String::as_str).collect();
    let expected: Vec<&str> = INPUTS.iter().map(|d| d.name).collect();
    assert_eq!(names, expected, "action.yml inputs (in order)");
    for def in INPUTS {
        let input = &inputs[def.name];
        assert_eq!(
            input["description"], def.description,
            "description of input `{}`",
            def.name
        );
        let default = input.get("default").and_then(Value::as_str);
        assert_eq!(default, def.default, "default of input `{}`", def.name);
        // k8s-deploy's trap: `required: true` with a default.
        assert_ne!(
            input["required"], true,
            "input `{}` should not be required",
            def.name
        );
    }
}

#[test]
fn action_yml_declares_exactly_the_outputs_in_code() {
    let action = action_yml();
    let outputs = action["outputs"].as_object().expect("outputs mapping");
    let names: Vec<&str> = outputs.keys().map(String::as_str).collect();
    let expected: Vec<&str> = OUTPUTS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected, "action.yml outputs (in order)");
    for (name, description) in OUTPUTS {
        assert_eq!(
            outputs[*name]["description"], *description,
            "description of output `{name}`"
        );
    }
    assert_eq!(action["runs"]["using"], "docker");
}

#[test]
fn readme_inputs_table_matches_the_code() {
    let rows = readme_table("inputs");
    assert_eq!(rows.len(), INPUTS.len(), "README inputs rows: {rows:?}");
    for (row, def) in rows.iter().zip(INPUTS) {
        assert_eq!(unquote(&row[0]), def.name, "README input order");
        assert_eq!(
            row[1], def.description,
            "README description of `{}`",
            def.name
        );
        let default = row.get(2).map(|c| unquote(c)).filter(|c| !c.is_empty());
        assert_eq!(
            default.as_deref(),
            def.default,
            "README default of `{}`",
            def.name
        );
    }
}

#[test]
fn readme_outputs_table_matches_the_code() {
    let rows = readme_table("outputs");
    assert_eq!(rows.len(), OUTPUTS.len(), "README outputs rows: {rows:?}");
    for (row, (name, description)) in rows.iter().zip(OUTPUTS) {
        assert_eq!(unquote(&row[0]), *name, "README output order");
        assert_eq!(row[1], *description, "README description of `{name}`");
    }
}

#[test]
fn readme_gives_exactly_one_test_command_that_ci_runs() {
    let readme = read(&repo_root().join("README.md"));
    assert_eq!(readme.matches("<!-- test-command -->").count(), 1);
    let ci = read(&repo_root().join(".ci/run"));
    assert!(
        ci.contains("test-command"),
        ".ci/run reads the README's test command"
    );
}

/// Every `uses: studysphere/promote-action@…` step in workflows-examples/ passes only inputs
/// action.yml declares (GitHub only warns about an unknown one, and the step then runs without
/// it), and reads only outputs it declares.
#[test]
fn workflow_examples_use_only_declared_inputs_and_outputs() {
    let action = action_yml();
    let inputs = action["inputs"].as_object().expect("inputs mapping");
    let outputs = action["outputs"].as_object().expect("outputs mapping");
    let dir = repo_root().join("workflows-examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "workflow examples: {files:?}");
    let mut steps = 0;
    for file in &files {
        let text = read(file);
        let workflow: Value = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{} parses: {e}", file.display()));
        let jobs = workflow["jobs"].as_object().expect("jobs");
        let mut ids = Vec::new();
        for (job, body) in jobs {
            for step in body["steps"].as_array().into_iter().flatten() {
                let uses = step["uses"].as_str().unwrap_or_default();
                if !uses.starts_with("studysphere/promote-action@") {
                    continue;
                }
                steps += 1;
                // The command is one the action documents (and so one `promote` has).
                if let Some(command) = step["with"]["command"].as_str() {
                    let described = inputs["command"]["description"]
                        .as_str()
                        .unwrap_or_default();
                    assert!(
                        described.contains(&format!("`{}`", command.trim())),
                        "{} job {job}: command `{command}` is not in action.yml's `command` input",
                        file.display()
                    );
                }
                if let Some(id) = step["id"].as_str() {
                    ids.push(id.to_string());
                }
                for name in step["with"].as_object().into_iter().flatten().map(|w| w.0) {
                    assert!(
                        inputs.contains_key(name),
                        "{} job {job}: input `{name}` is not in action.yml",
                        file.display()
                    );
                }
            }
        }
        // `steps.<id>.outputs.<name>` of a promote-action step names a declared output.
        for id in &ids {
            let prefix = format!("steps.{id}.outputs.");
            for (at, _) in text.match_indices(&prefix) {
                let name: String = text[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                assert!(
                    outputs.contains_key(&name),
                    "{}: output `{name}` of step {id} is not in action.yml",
                    file.display()
                );
            }
        }
    }
    assert!(steps >= 6, "promote-action steps found: {steps}");
}
