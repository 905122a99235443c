require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "lt" :comparator "i;ascii-numeric"
   ["x-priority"] ["3"] {
    fileinto "Priority";
}
elsif address :count "gt" :comparator "i;ascii-numeric"
   ["to", "cc"] ["3"] {
    fileinto "Crowd";
}
