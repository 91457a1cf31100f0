pub fn worker_main(_a: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
