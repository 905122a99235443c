require ["date", "relational", "index", "fileinto"];
if date :value "gt" :index 1 :zone "-0500" "received"
        "iso8601" "2007-02-26T09:00:00-05:00"
{ redirect "aftercutoff@example.org"; }
if header :index 2 :is "received" "from b by c; Mon, 26 Feb 2007 08:00:00 -0500" {
    fileinto "second";
}
