require ["fileinto","envelope"];
if allof (not exists "x-spam-flag", anyof (envelope :domain "from" ["example.org","example.net"], header :matches "to" "*@example.fr"))
{
	fileinto "Friendly";
}
