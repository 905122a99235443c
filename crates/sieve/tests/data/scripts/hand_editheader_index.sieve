require ["editheader", "index", "fileinto", "variables", "relational"];
addheader "X-Sieve-Test" "first";
addheader :last "X-Sieve-Test" "last";
if header :index 1 :is "x-sieve-test" "first"
{
	fileinto "FirstOk";
}
deleteheader :index 1 "x-sieve-test";
if header :is "x-sieve-test" "first"
{
	fileinto "NotDeleted";
}
deleteheader :index 1 :last "received";
if header :count "ge" "received" "1"
{
	fileinto "ReceivedKept";
}
