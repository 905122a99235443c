require ["editheader", "fileinto"];
addheader "X-Source" "mailing list";
deleteheader :contains "X-Spam-Status" "Yes";
deleteheader "Received";
addheader :last "X-Sieve-Filtered" "<kim@job.example.com>";
if header :is "X-Source" "mailing list" {
    fileinto "lists";
}
