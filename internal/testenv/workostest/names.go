package workostest

// Static tables the dataset draws from. Each person name has a display form and
// an ASCII slug used in e-mail addresses; slugs are unique within a table (the
// e-mail filter decodes them back to table indices) and contain only a-z.

type personName struct {
	display string
	slug    string
	eastern bool // family name first, no space ("李伟")
}

var firstNames = []personName{
	{"James", "james", false}, {"Mary", "mary", false}, {"Olivia", "olivia", false},
	{"Liam", "liam", false}, {"Noah", "noah", false}, {"Emma", "emma", false},
	{"Ava", "ava", false}, {"Sophia", "sophia", false}, {"Zoë", "zoe", false},
	{"José", "jose", false}, {"Łukasz", "lukasz", false}, {"François", "francois", false},
	{"Søren", "soren", false}, {"Ingrid", "ingrid", false}, {"Aarav", "aarav", false},
	{"Priya", "priya", false}, {"Mohammed", "mohammed", false}, {"Fatima", "fatima", false},
	{"Yuki", "yuki", false}, {"Hiroshi", "hiroshi", false}, {"伟", "wei", true},
	{"秀英", "xiuying", true}, {"Ольга", "olga", false}, {"Дмитрий", "dmitry", false},
	{"Björn", "bjorn", false}, {"Chloé", "chloe", false}, {"Sinéad", "sinead", false},
	{"Oluwaseun", "oluwaseun", false}, {"Chidi", "chidi", false}, {"Aroha", "aroha", false},
	{"Mateo", "mateo", false}, {"Lucía", "lucia", false}, {"João", "joao", false},
	{"Zoltán", "zoltan", false}, {"Ayşe", "ayse", false}, {"Emre", "emre", false},
	{"Thảo", "thao", false}, {"Kwame", "kwame", false}, {"Amara", "amara", false},
	{"Siobhán", "siobhan", false}, {"Maëlle", "maelle", false}, {"Grace", "grace", false},
	{"Daniel", "daniel", false}, {"Sarah", "sarah", false}, {"David", "david", false},
	{"Laura", "laura", false}, {"Michael", "michael", false}, {"Anna", "anna", false},
	{"Thomas", "thomas", false}, {"Julia", "julia", false}, {"Ahmed", "ahmed", false},
	{"Leila", "leila", false}, {"Raj", "raj", false}, {"Ananya", "ananya", false},
	{"Kenji", "kenji", false}, {"Sakura", "sakura", false}, {"Min-jun", "minjun", false},
	{"Ji-woo", "jiwoo", false}, {"Nikolaj", "nikolaj", false}, {"Astrid", "astrid", false},
	{"Dolores", "dolores", false}, {"Ren", "ren", false}, {"Ines", "ines", false},
	{"Ngozi", "ngozi", false},
}

var lastNames = []personName{
	{"Smith", "smith", false}, {"Johnson", "johnson", false}, {"Williams", "williams", false},
	{"Brown", "brown", false}, {"García", "garcia", false}, {"Müller", "muller", false},
	{"Schmidt", "schmidt", false}, {"Nowak", "nowak", false}, {"Kowalski", "kowalski", false},
	{"Wiśniewski", "wisniewski", false}, {"李", "li", true}, {"王", "wang", true},
	{"张", "zhang", true}, {"陈", "chen", true}, {"田中", "tanaka", true},
	{"佐藤", "sato", true}, {"Kim", "kim", false}, {"Park", "park", false},
	{"Nguyễn", "nguyen", false}, {"Trần", "tran", false}, {"Dubois", "dubois", false},
	{"Lefèvre", "lefevre", false}, {"Rossi", "rossi", false}, {"Bianchi", "bianchi", false},
	{"Silva", "silva", false}, {"Santos", "santos", false}, {"Pereira", "pereira", false},
	{"O'Brien", "obrien", false}, {"Murphy", "murphy", false}, {"Ó Súilleabháin", "osuilleabhain", false},
	{"Jensen", "jensen", false}, {"Nielsen", "nielsen", false}, {"Andersson", "andersson", false},
	{"Virtanen", "virtanen", false}, {"Kovács", "kovacs", false}, {"Horváth", "horvath", false},
	{"Yılmaz", "yilmaz", false}, {"Öztürk", "ozturk", false}, {"Иванов", "ivanov", false},
	{"Петрова", "petrova", false}, {"Patel", "patel", false}, {"Sharma", "sharma", false},
	{"Singh", "singh", false}, {"Khan", "khan", false}, {"Okafor", "okafor", false},
	{"Adeyemi", "adeyemi", false}, {"Mensah", "mensah", false}, {"Cohen", "cohen", false},
	{"Levi", "levi", false}, {"Haddad", "haddad", false}, {"Al-Sayed", "alsayed", false},
	{"van der Berg", "vanderberg", false}, {"de la Cruz", "delacruz", false}, {"Takahashi", "takahashi", false},
	{"Suzuki", "suzuki", false}, {"Taylor", "taylor", false}, {"Anderson", "anderson", false},
	{"Moore", "moore", false}, {"Martin", "martin", false}, {"Lee", "lee", false},
	{"Walker", "walker", false}, {"Young", "young", false}, {"Wright", "wright", false},
	{"Fernández", "fernandez", false},
}

var jobTitles = []string{
	"Software Engineer", "Senior Software Engineer", "Staff Engineer", "Engineering Manager",
	"Product Manager", "Product Designer", "Account Executive", "Sales Development Representative",
	"Customer Success Manager", "Support Specialist", "Financial Analyst", "Controller",
	"Legal Counsel", "Recruiter", "People Partner", "IT Administrator", "Security Engineer",
	"Data Scientist", "Marketing Manager", "Chief Executive Officer", "Ingénieure logicielle",
	"Vertriebsleiter", "ソフトウェアエンジニア", "Директор по продажам", "Diseñadora UX",
	"Site Reliability Engineer", "QA Engineer", "Office Manager",
}

var groupNames = []string{
	"Engineering", "Sales – EMEA", "Sales – Americas", "Marketing", "Product", "Design",
	"Customer Success", "Support", "Finance", "Legal", "People & Culture", "IT", "Security",
	"Data Science", "Research & Développement", "Équipe Produit", "Vertrieb DACH",
	"Ventas – LATAM", "営業部", "研发部", "Финансы", "All Employees", "Contractors", "Managers",
	"Interns", "Okta Admins", "On-call 🚨", "Platform", "Infrastructure", "Mobile", "QA",
	"Recruiting", "Office – Kraków", "Office – São Paulo", "Office – 東京", "Board", "Executives",
	"\"Quoted\" \\ Backslash Team",
}

type company struct {
	name   string
	domain string // without TLD variations; see orgDomain
}

var companies = []company{
	{"Foo Corp", "foo-corp.com"}, {"Acme", "acme.com"}, {"Globex", "globex.io"},
	{"Initech", "initech.com"}, {"Müller & Söhne GmbH", "mueller-soehne.de"},
	{"Société Lumière", "lumiere.fr"}, {"東京ロボティクス", "tokyo-robotics.jp"},
	{"Umbrella Health", "umbrella-health.com"}, {"Stark Industries", "stark.com"},
	{"Wayne Enterprises", "wayne.com"}, {"Hooli", "hooli.xyz"}, {"Pied Piper", "piedpiper.com"},
	{"Nakatomi Trading", "nakatomi.co.jp"}, {"Soylent", "soylent.com"},
	{"Cyberdyne Systems", "cyberdyne.ai"}, {"Kraków Software Sp. z o.o.", "krakow-software.pl"},
}

var offices = []string{"Zürich", "São Paulo", "東京", "Kraków", "London", "New York", "Lagos", "Bengaluru", "Montréal", "Reykjavík"}

var departments = []string{"Engineering", "Sales", "Marketing", "Finance", "Legal", "Support", "Design", "Recherche & Développement"}

var roleSlugs = []string{"member", "member", "member", "member", "admin", "viewer", "billing-admin", "engineering-lead"}

var fteValues = []string{"1", "0.5", "0.8", "0.75", "1.0", "0.6"}

var personalDomains = []string{"gmail.com", "proton.me", "outlook.com", "yahoo.co.jp"}

// Rare, deliberately unknown enum values: clients must keep them verbatim.
const (
	unknownDirectoryType  = "future scim v3.0"
	unknownDirectoryState = "paused"
	unknownUserState      = "pending_review"
)
