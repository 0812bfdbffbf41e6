//! Compiles `vigil/v1/*.proto` with protox (a pure-Rust protoc), so no system `protoc` is needed,
//! and generates the messages (prost) and the `SentinelControl` service (tonic). The encoded file
//! descriptor set is written too, for gRPC server reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["vigil/v1/gossip.proto", "vigil/v1/control.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(protos, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("vigil_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
