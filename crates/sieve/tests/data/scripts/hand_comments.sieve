/* A script full of comments
   and odd layout. */ require [ "fileinto" ] ;
if   header   :contains   # the subject
  "Subject"   "release"   { fileinto   "Releases" ;   }
