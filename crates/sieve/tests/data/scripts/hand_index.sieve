require ["index","date","fileinto"];
if header :index 1 :contains "received" "relay2"
{
	fileinto "ViaRelay2";
}
if header :index 1 :last :contains "received" "relay1"
{
	fileinto "FromRelay1";
}
