pub fn main(_a: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
