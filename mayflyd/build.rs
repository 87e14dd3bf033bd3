//! Generates the gRPC service and messages from
//! `protocol/proto/mayfly/v1/mayfly.proto` when the `grpc` feature is on
//! (nothing otherwise). `protoc` is the one `PROTOC` names, else the one
//! that comes with the `protoc-bin-vendored` crate, so a fresh machine
//! builds without installing it.

fn main() {
    #[cfg(feature = "grpc")]
    grpc::generate();
}

/// The code generation, only built with the feature.
#[cfg(feature = "grpc")]
mod grpc {
    use std::path::PathBuf;

    /// Where the `.proto` files live, from this crate's folder.
    const PROTO_ROOT: &str = "../protocol/proto";

    /// The service's `.proto`, under [`PROTO_ROOT`].
    const PROTO: &str = "mayfly/v1/mayfly.proto";

    /// Writes the generated code and the file descriptor set (for server
    /// reflection) to `OUT_DIR`; any failure fails the build with its
    /// reason.
    pub fn generate() {
        println!("cargo:rerun-if-env-changed=PROTOC");
        println!("cargo:rerun-if-changed={PROTO_ROOT}/{PROTO}");
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
        let protoc = match std::env::var_os("PROTOC").filter(|p| !p.is_empty()) {
            Some(path) => PathBuf::from(path),
            None => protoc_bin_vendored::protoc_bin_path().unwrap_or_else(|e| {
                panic!("no protoc for this platform in protoc-bin-vendored ({e}); set PROTOC")
            }),
        };
        let mut config = tonic_prost_build::Config::new();
        config.protoc_executable(protoc);
        // Maps come out as BTreeMaps: labels and environment in key order,
        // the same every time.
        config.btree_map(["."]);
        tonic_prost_build::configure()
            .build_server(true)
            .build_client(true)
            .build_transport(false)
            .file_descriptor_set_path(out.join("mayfly_descriptor.bin"))
            .compile_with_config(
                config,
                &[format!("{PROTO_ROOT}/{PROTO}")],
                &[PROTO_ROOT.to_string()],
            )
            .unwrap_or_else(|e| panic!("cannot generate the gRPC code from {PROTO}: {e}"));
    }
}
