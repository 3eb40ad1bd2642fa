// PosLedger: the domain. Pure values and functions, no I/O.
enum PosLedgerModule {}
