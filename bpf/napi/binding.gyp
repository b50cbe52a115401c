{
  "targets": [
    {
      "target_name": "ebpf_napi",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/maps.cc",
        "src/object.cc",
        "src/tc.cc",
        "src/ringbuf.cc",
        "src/sock.cc",
        "src/http-parse.cc",
        "src/http-relay.cc",
        "src/http-probe.cc",
        "src/upstream.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
