//! The instance's default name: the script's when an interpreter runs one, so two programs
//! of one interpreter differ; a name the user chose is never changed.

use std::fs;

use super::run;

#[test]
fn a_script_names_the_default_instance_and_a_chosen_name_wins() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("my server.v2.js");
    fs::write(&script, "").unwrap();
    let script = script.to_str().unwrap();
    let spec = run(&["--", "sh", script]);
    assert_eq!((spec.instance.as_str(), spec.instance_is_default), ("sh-my-server-v2", true));
    assert_eq!(spec.groups[0].name, "sh", "the group keeps the program's name");
    let socket = spec.control.unwrap();
    assert_eq!(socket.file_name().unwrap(), "sh-my-server-v2.sock");

    let relative = run(&["--cwd", dir.path().to_str().unwrap(), "--", "sh", "my server.v2.js"]);
    assert_eq!(relative.instance, "sh-my-server-v2", "found under --cwd");

    for (args, instance, is_default) in [
        (&["--", "sleep", "100"][..], "sleep", true),
        (&["--", "sh", "-c", "exit 0"], "sh", true),
        (&["--", "true"], "true", true),
        (&["-n", "web", "--", "sh", script], "web", true),
        (&["-I", "shop", "--", "sh", script], "shop", false),
        (&["--control", "/tmp/x.sock", "--", "sh", script], "sh-my-server-v2", false),
    ] {
        let spec = run(args);
        assert_eq!((spec.instance.as_str(), spec.instance_is_default), (instance, is_default));
    }
}
