// Free text a user types and the console shows (notes, feature values) may not carry invisible format characters:
// a right-to-left override or a zero-width character makes one name or note display as another.
using QubesWeb.Data.Qubes;

namespace QubesWeb.UnitTests;

public sealed class InvisibleTextTests
{
    public static TheoryData<string, string, string> Spoofing => new()
    {
        // what, text, what the refusal must tell the user to remove
        { "right-to-left override", "see vault\u202Egpj.exe", "U+202E (right-to-left override) at character 10" },
        { "left-to-right embedding", "a\u202Ab", "U+202A (left-to-right embedding)" },
        { "pop directional formatting", "a\u202Cb", "U+202C (pop directional formatting)" },
        { "right-to-left isolate", "\u2067work\u2069", "U+2067 (right-to-left isolate) at character 1" },
        { "first strong isolate", "a\u2068b", "U+2068 (first strong isolate)" },
        { "zero width space", "wo\u200Brk", "U+200B (zero width space) at character 3" },
        { "zero width joiner", "a\u200Db", "U+200D (zero width joiner)" },
        { "right-to-left mark", "a\u200Fb", "U+200F (right-to-left mark)" },
        { "byte order mark", "\uFEFFpersonal", "U+FEFF (zero width no-break space) at character 1" },
        { "soft hyphen (Cf)", "per\u00ADsonal", "U+00AD at character 4" },
        { "Arabic letter mark (Cf)", "a\u061Cb", "U+061C" },
        { "a tag character outside the BMP (Cf)", "a\U000E0041b", "U+E0041 at character 2" },
    };

    [Theory]
    [MemberData(nameof(Spoofing))]
    public void Notes_with_an_invisible_format_character_are_refused_naming_the_character_to_remove(string what, string text, string named)
    {
        var e = Assert.Throws<QubeRuleException>(() => QubeRules.ValidateNotes(text));
        Assert.StartsWith("Notes may not contain invisible formatting characters", e.Message);
        Assert.Contains("remove " , e.Message);
        Assert.True(e.Message.Contains(named, StringComparison.Ordinal), $"{what}: {e.Message}");
    }

    [Theory]
    [MemberData(nameof(Spoofing))]
    public void A_feature_value_with_an_invisible_format_character_is_refused(string what, string text, string named)
    {
        var problem = QubeFeatureRules.ValueProblem(text);
        Assert.NotNull(problem);
        Assert.StartsWith("A feature value may not contain invisible formatting characters", problem);
        Assert.True(problem.Contains(named, StringComparison.Ordinal), $"{what}: {problem}");
        var e = Assert.Throws<QubeRuleException>(() => QubeFeatureRules.Validate("vm-config.note", text));
        Assert.Contains("Invalid value for feature 'vm-config.note'", e.Message);
    }

    [Fact]
    public void Every_kind_of_invisible_character_is_named_once_in_the_order_met()
    {
        var problem = QubeRules.InvisibleFormatProblem("\u202Ea\u202Eb\u200Bc", "Notes")!;
        Assert.Contains("remove U+202E (right-to-left override) at character 1, U+200B (zero width space) at character 5.", problem);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Work files; do not open attachments.\nSecond line\twith a tab.")]
    [InlineData("Ünïcödé, 日本語, עברית and العربية read as themselves, and emoji 🙂 too")]
    [InlineData("<img src=x onerror=alert(1)> ]]> </script>")]
    public void Ordinary_text_in_any_script_is_accepted(string text)
    {
        QubeRules.ValidateNotes(text);
        Assert.Null(QubeRules.InvisibleFormatProblem(text, "Notes"));
        Assert.Null(QubeFeatureRules.ValueProblem(text.Replace("\n", " ").Replace("\t", " ")));
    }
}
