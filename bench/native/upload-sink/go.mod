module ledgerflow/bench/upload-sink

go 1.21
