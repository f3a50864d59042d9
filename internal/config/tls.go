package config

// validate checks api.tls without reading the files (the server loads them
// at start and names the field when one fails to parse).
func (t APITLS) validate(bad func(field, format string, args ...any)) {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		bad("api.tls.key_file", "must be set when api.tls.cert_file is (both or neither)")
	case t.CertFile == "" && t.KeyFile != "":
		bad("api.tls.cert_file", "must be set when api.tls.key_file is (both or neither)")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		bad("api.tls.client_ca_file", "needs api.tls.cert_file and api.tls.key_file: client certificates are checked only over TLS")
	}
}
