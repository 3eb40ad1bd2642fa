enum PosJournalModule {}
