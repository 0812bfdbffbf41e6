//! Compiles `vigil/v1/*.proto` with protox (a pure-Rust protoc), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["vigil/v1/gossip.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(protos, ["."])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
