"""TCP convergence layer sessions (RFC 9174 TCPCLv4, RFC 7242 TCPCLv3), sans-IO."""
