require ["editheader"];
addheader "X-Source" "mailing list";
deleteheader :contains "X-Spam-Status" "Yes";
deleteheader "Received";
addheader :last "X-Sieve-Filtered" "<kim@job.example.com>";
