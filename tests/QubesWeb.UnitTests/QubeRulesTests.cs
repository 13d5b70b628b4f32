// Qubes' name, resource and template rules (core-admin qubes/vm/__init__.py validate_name, appvm.py, templatevm.py),
// with the bad inputs of shared/notes/security.md: each is refused by a sentence that names the rule it breaks.
using QubesWeb.Data.Qubes;

namespace QubesWeb.UnitTests;

public sealed class QubeRulesTests
{
    public static TheoryData<string, string, string> BadNames => new()
    {
        // what, name, a phrase of the sentence that names the rule
        { "32 characters", new string('a', 32), "at most 31 characters" },
        { "4 KB of text", new string('x', 4096), "at most 31 characters" },
        { "leading digit", "1stVM", "must start with a letter" },
        { "leading dash", "-vm", "must start with a letter" },
        { "leading underscore", "_vm", "must start with a letter" },
        { "leading dot", ".vm", "must start with a letter" },
        { "hashes", "test-###", "'#'" },
        { "an option", "--helpVM", "must start with a letter" },
        { "Xen's dom0 name", "Domain-0", "is reserved" },
        { "none", "none", "is reserved" },
        { "default", "default", "is reserved" },
        { "device-model suffix", "x-dm", "must not end in '-dm'" },
        { "spaces", "my vm", "spaces" },
        { "single quote", "it's", "'''" },
        { "double quote", "a\"b", "'\"'" },
        { "semicolon", "a;reboot", "';'" },
        { "command substitution", "$(id)", "'$'" },
        { "path traversal", "../x", "must start with a letter" },
        { "slash", "a/b", "'/'" },
        { "NUL", "a\0b", "NUL" },
        { "right-to-left override", "evil\u202Egpj.exe", "U+202E" },
        { "zero-width space", "wo\u200Brk", "U+200B" },
    };

    [Theory]
    [MemberData(nameof(BadNames))]
    public void A_bad_name_is_refused_with_a_sentence_naming_the_broken_rule(string what, string name, string rule)
    {
        var problems = QubeRules.NameProblems(name);
        var error = Assert.Throws<QubeRuleException>(() => QubeRules.ValidateName(name));

        Assert.True(problems.Count > 0, what);
        Assert.Contains(rule, error.Message);
        Assert.StartsWith("Invalid name ", error.Message);
    }

    [Theory]
    [MemberData(nameof(BadNames))]
    public void The_refusal_never_echoes_control_or_invisible_characters_or_the_whole_input(string what, string name, string rule)
    {
        _ = rule;
        var error = Assert.Throws<QubeRuleException>(() => QubeRules.ValidateName(name));

        Assert.DoesNotContain('\0', error.Message);
        Assert.DoesNotContain('\u202E', error.Message);
        Assert.DoesNotContain('\u200B', error.Message);
        Assert.True(error.Message.Length < 600, $"{what}: message of {error.Message.Length} characters");
    }

    [Fact]
    public void A_name_breaking_several_rules_is_told_every_one()
    {
        var problems = QubeRules.NameProblems("1 bad;name-with-far-too-many-characters");

        Assert.Contains(problems, p => p.Contains("at most 31"));
        Assert.Contains(problems, p => p.Contains("start with a letter"));
        Assert.Contains(problems, p => p.Contains("may contain only"));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void A_missing_name_is_refused_as_required(string? name)
    {
        var error = Assert.Throws<QubeRuleException>(() => QubeRules.ValidateName(name));

        Assert.Contains("A name is required.", error.Message);
    }

    [Theory]
    [InlineData("work")]
    [InlineData("a")]
    [InlineData("abcdefghijklmnopqrstuvwxyz01234")] // 31 characters
    [InlineData("sys-net")]
    [InlineData("fedora-42")]
    [InlineData("A.b_c-d")]
    [InlineData("dm")]
    [InlineData("x-dmz")]
    public void A_valid_name_is_accepted(string name)
    {
        Assert.Empty(QubeRules.NameProblems(name));
        QubeRules.ValidateName(name);
    }

    [Fact]
    public void The_longest_accepted_name_has_31_characters()
    {
        Assert.Equal(31, QubeRules.MaxNameLength);
        Assert.Empty(QubeRules.NameProblems(new string('a', 31)));
        Assert.NotEmpty(QubeRules.NameProblems(new string('a', 32)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(QubeRules.MinMemoryMiB - 1)]
    [InlineData(QubeRules.MaxMemoryMiB + 1)]
    [InlineData(int.MinValue)]
    [InlineData(int.MaxValue)]
    public void Memory_outside_the_bounds_is_refused_saying_the_bounds(int memory)
    {
        var error = Assert.Throws<QubeRuleException>(() => QubeRules.ValidateResources(memory, 2));

        Assert.Contains($"between {QubeRules.MinMemoryMiB} and {QubeRules.MaxMemoryMiB} MiB", error.Message);
        Assert.Contains(memory.ToString(), error.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-2)]
    [InlineData(QubeRules.MaxVCpus + 1)]
    public void Vcpus_outside_the_bounds_are_refused_saying_the_bounds(int vcpus)
    {
        var error = Assert.Throws<QubeRuleException>(() => QubeRules.ValidateResources(400, vcpus));

        Assert.Contains($"between 1 and {QubeRules.MaxVCpus}", error.Message);
    }

    [Theory]
    [InlineData(QubeRules.MinMemoryMiB, 1)]
    [InlineData(QubeRules.DefaultMemoryMiB, QubeRules.DefaultVCpus)]
    [InlineData(QubeRules.MaxMemoryMiB, QubeRules.MaxVCpus)]
    public void Resources_at_and_inside_the_bounds_are_accepted(int memory, int vcpus) =>
        QubeRules.ValidateResources(memory, vcpus);

    [Fact]
    public void Notes_with_control_characters_or_over_64_KiB_are_refused_but_markup_is_just_text()
    {
        Assert.Throws<QubeRuleException>(() => QubeRules.ValidateNotes("a\0b"));
        Assert.Throws<QubeRuleException>(() => QubeRules.ValidateNotes(new string('n', QubeRules.MaxNotesLength + 1)));
        QubeRules.ValidateNotes("<img src=x onerror=alert(1)> \"><svg onload=x> </script> ]]> <!ENTITY x SYSTEM \"file:///etc/passwd\">\n\ttab");
    }

    private static Qube Q(string name, QubeClass cls) => new() { Name = name, Class = cls };

    [Fact]
    public void An_AppVM_without_a_template_is_refused()
    {
        var error = Assert.Throws<QubeRuleException>(() => QubeRules.ValidateTemplate(QubeClass.AppVM, null));

        Assert.Contains("An AppVM needs a template", error.Message);
    }

    [Theory]
    [InlineData(QubeClass.AppVM)]
    [InlineData(QubeClass.StandaloneVM)]
    [InlineData(QubeClass.AdminVM)]
    public void An_AppVM_whose_template_is_not_a_TemplateVM_is_refused(QubeClass templateClass)
    {
        var error = Assert.Throws<QubeRuleException>(() => QubeRules.ValidateTemplate(QubeClass.AppVM, Q("other", templateClass)));

        Assert.Contains("'other'", error.Message);
        Assert.Contains("must be a TemplateVM", error.Message);
    }

    [Fact]
    public void An_AppVM_based_on_a_TemplateVM_is_accepted() =>
        QubeRules.ValidateTemplate(QubeClass.AppVM, Q("fedora-42", QubeClass.TemplateVM));

    [Theory]
    [InlineData(QubeClass.TemplateVM)]
    [InlineData(QubeClass.StandaloneVM)]
    public void A_TemplateVM_or_StandaloneVM_with_a_template_is_refused(QubeClass cls)
    {
        var error = Assert.Throws<QubeRuleException>(() => QubeRules.ValidateTemplate(cls, Q("fedora-42", QubeClass.TemplateVM)));

        Assert.Contains($"A {cls} has no template", error.Message);
    }

    [Theory]
    [InlineData(QubeClass.TemplateVM)]
    [InlineData(QubeClass.StandaloneVM)]
    public void A_TemplateVM_or_StandaloneVM_without_a_template_is_accepted(QubeClass cls) =>
        QubeRules.ValidateTemplate(cls, null);

    [Fact]
    public void A_netvm_that_does_not_provide_network_or_would_make_a_loop_is_refused()
    {
        var netA = new Qube { Name = "net-a", Class = QubeClass.AppVM, ProvidesNetwork = true };
        var netB = new Qube { Name = "net-b", Class = QubeClass.AppVM, ProvidesNetwork = true, NetVm = netA };
        var plain = Q("plain", QubeClass.AppVM);

        Assert.Contains("does not provide network", Assert.Throws<QubeRuleException>(() => QubeRules.ValidateNetVm(Q("x", QubeClass.AppVM), plain)).Message);
        Assert.Contains("own netvm", Assert.Throws<QubeRuleException>(() => QubeRules.ValidateNetVm(netA, netA)).Message);
        Assert.Contains("loop", Assert.Throws<QubeRuleException>(() => QubeRules.ValidateNetVm(netA, netB)).Message);
        QubeRules.ValidateNetVm(Q("x", QubeClass.AppVM), netB);
    }

    [Fact]
    public void A_template_gets_no_netvm_and_is_told_why_while_a_standalone_may_have_one()
    {
        var firewall = new Qube { Name = "sys-firewall", Class = QubeClass.AppVM, ProvidesNetwork = true };

        var refused = Assert.Throws<QubeRuleException>(() => QubeRules.ValidateNetVm(Q("fedora-42", QubeClass.TemplateVM), firewall));
        Assert.Equal("A template has no netvm: templates are kept offline, as in Qubes, because every qube based on one trusts it. Leave its netvm at none.", refused.Message);
        Assert.Throws<QubeRuleException>(() => QubeRules.ValidateNetVm("new-template", QubeClass.TemplateVM, firewall));
        QubeRules.ValidateNetVm(Q("fedora-42", QubeClass.TemplateVM), null);
        QubeRules.ValidateNetVm("devbox", QubeClass.StandaloneVM, firewall);
    }

    [Fact]
    public void The_AdminVM_is_read_only()
    {
        var error = Assert.Throws<QubeRuleException>(() => QubeRules.EnsureNotAdminVm(Q("dom0", QubeClass.AdminVM)));

        Assert.Contains("read-only", error.Message);
    }
}
