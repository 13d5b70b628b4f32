// A template's dependents, the labels it serves, its effective trust and its warnings (the seed; qubes-doc
// templates.rst: "a template is as trusted as the most trusted qube based on it"), over qubes built in memory.
using QubesWeb.Data.Qubes;
using QubesWeb.Services.Templates;

namespace QubesWeb.UnitTests;

public sealed class TemplateTrustTests
{
    private static int _nextId = 100;

    private static Label L(string name) => Label.Defaults.Single(l => l.Name == name);

    private static Qube Q(string name, QubeClass cls, string label, Qube? template = null, Qube? netvm = null) => new()
    {
        Id = Interlocked.Increment(ref _nextId),
        Name = name,
        Class = cls,
        Label = L(label),
        LabelId = L(label).Id,
        Template = template,
        TemplateId = template?.Id,
        NetVm = netvm,
        NetVmId = netvm?.Id,
    };

    [Fact]
    public void Dependents_are_the_AppVMs_of_the_template_and_the_DispVMs_of_those_AppVMs()
    {
        var fedora = Q("fedora-42", QubeClass.TemplateVM, "black");
        var debian = Q("debian-13", QubeClass.TemplateVM, "black");
        var work = Q("work", QubeClass.AppVM, "blue", fedora);
        var dvm = Q("default-dvm", QubeClass.AppVM, "gray", fedora);
        var disp1 = Q("disp1234", QubeClass.DispVM, "red", dvm);
        var vault = Q("vault", QubeClass.AppVM, "black", debian);
        var devbox = Q("devbox", QubeClass.StandaloneVM, "orange");

        var report = TemplateTrust.Assess(fedora, [fedora, debian, work, dvm, disp1, vault, devbox]);

        Assert.Equal(["default-dvm", "work"], report.AppVms.Select(a => a.AppVm.Name));
        Assert.Equal(["disp1234"], report.AppVms[0].DispVms.Select(d => d.Name));
        Assert.Empty(report.AppVms[1].DispVms);
        Assert.Equal(["default-dvm", "disp1234", "work"], report.Dependents.Select(d => d.Name));
        Assert.Equal(["red", "gray", "blue"], report.Labels.Select(l => l.Name));
    }

    [Fact]
    public void Dependents_are_found_by_template_key_when_the_template_object_is_not_loaded()
    {
        var fedora = Q("fedora-42", QubeClass.TemplateVM, "black");
        var work = Q("work", QubeClass.AppVM, "blue", fedora);
        work.Template = null; // only the foreign key, as a query without Include gives it

        var report = TemplateTrust.Assess(fedora, [fedora, work]);

        Assert.Equal(["work"], report.Dependents.Select(d => d.Name));
    }

    [Fact]
    public void Effective_trust_is_the_label_of_the_most_trusted_dependent()
    {
        var fedora = Q("fedora-42", QubeClass.TemplateVM, "black");
        var untrusted = Q("untrusted", QubeClass.AppVM, "red", fedora);
        var work = Q("work", QubeClass.AppVM, "blue", fedora);
        var personal = Q("personal", QubeClass.AppVM, "yellow", fedora);

        var report = TemplateTrust.Assess(fedora, [fedora, untrusted, work, personal]);

        Assert.Equal("blue", report.EffectiveTrust?.Name);
    }

    [Fact]
    public void A_DispVM_counts_towards_effective_trust_through_its_AppVM()
    {
        var fedora = Q("fedora-42", QubeClass.TemplateVM, "black");
        var dvm = Q("default-dvm", QubeClass.AppVM, "gray", fedora);
        var disp = Q("disp42", QubeClass.DispVM, "purple", dvm);

        var report = TemplateTrust.Assess(fedora, [fedora, dvm, disp]);

        Assert.Equal("purple", report.EffectiveTrust?.Name);
    }

    [Fact]
    public void A_template_nothing_depends_on_has_no_effective_trust_and_no_warning()
    {
        var fedora = Q("fedora-42", QubeClass.TemplateVM, "black");

        var report = TemplateTrust.Assess(fedora, [fedora]);

        Assert.Empty(report.Dependents);
        Assert.Empty(report.Labels);
        Assert.Null(report.EffectiveTrust);
        Assert.Empty(report.Warnings);
    }

    [Fact]
    public void Red_and_black_qubes_on_one_template_give_a_trust_warning_naming_the_qubes_at_both_ends()
    {
        var fedora = Q("fedora-42", QubeClass.TemplateVM, "black");
        var sysNet = Q("sys-net", QubeClass.AppVM, "red", fedora);
        var untrusted = Q("untrusted", QubeClass.AppVM, "red", fedora);
        var work = Q("work", QubeClass.AppVM, "blue", fedora);
        var vault = Q("vault", QubeClass.AppVM, "black", fedora);

        var report = TemplateTrust.Assess(fedora, [fedora, sysNet, untrusted, work, vault]);

        var warning = Assert.Single(report.Warnings);
        Assert.Equal(TemplateWarningKind.TrustSpread, warning.Kind);
        Assert.Contains("red (sys-net, untrusted)", warning.Text);
        Assert.Contains("black (vault)", warning.Text);
        Assert.Contains("7 steps apart", warning.Text);
        Assert.Contains("as trusted as the most trusted qube based on it", warning.Text);
        Assert.DoesNotContain("work", warning.Text);
    }

    [Theory]
    [InlineData("red", "gray")]     // 4 steps: the threshold
    [InlineData("orange", "blue")]
    [InlineData("green", "black")]
    [InlineData("red", "purple")]
    public void Labels_four_or_more_steps_apart_give_a_trust_warning(string low, string high)
    {
        var t = Q("t", QubeClass.TemplateVM, "black");
        var report = TemplateTrust.Assess(t, [t, Q("a", QubeClass.AppVM, low, t), Q("b", QubeClass.AppVM, high, t)]);

        Assert.Equal(TemplateWarningKind.TrustSpread, Assert.Single(report.Warnings).Kind);
    }

    [Theory]
    [InlineData("red", "green")]    // 3 steps: close enough
    [InlineData("yellow", "blue")]
    [InlineData("blue", "black")]
    [InlineData("red", "red")]
    public void Labels_fewer_than_four_steps_apart_give_no_trust_warning(string low, string high)
    {
        var t = Q("t", QubeClass.TemplateVM, "black");
        var report = TemplateTrust.Assess(t, [t, Q("a", QubeClass.AppVM, low, t), Q("b", QubeClass.AppVM, high, t)]);

        Assert.Empty(report.Warnings);
    }

    [Fact]
    public void Qubes_on_other_templates_do_not_widen_the_spread()
    {
        var fedora = Q("fedora-42", QubeClass.TemplateVM, "black");
        var debian = Q("debian-13", QubeClass.TemplateVM, "black");
        var work = Q("work", QubeClass.AppVM, "blue", fedora);
        var untrusted = Q("untrusted", QubeClass.AppVM, "red", debian);

        var report = TemplateTrust.Assess(fedora, [fedora, debian, work, untrusted]);

        Assert.Empty(report.Warnings);
    }

    [Fact]
    public void Custom_labels_are_listed_but_do_not_rank_trust()
    {
        var t = Q("t", QubeClass.TemplateVM, "black");
        var custom = Q("lab", QubeClass.AppVM, "red", t);
        custom.Label = new Label { Id = 9, Name = "teal", Color = "#008080" };
        custom.LabelId = 9;
        var work = Q("work", QubeClass.AppVM, "blue", t);

        var report = TemplateTrust.Assess(t, [t, custom, work]);

        Assert.Equal(["blue", "teal"], report.Labels.Select(l => l.Name));
        Assert.Equal("blue", report.EffectiveTrust?.Name);
        Assert.Empty(report.Warnings);
    }

    [Fact]
    public void A_template_with_a_netvm_gets_a_warning_naming_it()
    {
        var sysNet = Q("sys-net", QubeClass.AppVM, "red");
        var fedora = Q("fedora-42", QubeClass.TemplateVM, "black", netvm: sysNet);

        var report = TemplateTrust.Assess(fedora, [fedora, sysNet]);

        var warning = Assert.Single(report.Warnings);
        Assert.Equal(TemplateWarningKind.HasNetVm, warning.Kind);
        Assert.Contains("fedora-42 has a netvm (sys-net)", warning.Text);
        Assert.Contains("updates proxy", warning.Text);
    }

    [Fact]
    public void Assessing_all_gives_one_report_per_TemplateVM_by_name()
    {
        var fedora = Q("fedora-42", QubeClass.TemplateVM, "black");
        var debian = Q("debian-13", QubeClass.TemplateVM, "black");
        var work = Q("work", QubeClass.AppVM, "blue", fedora);
        var devbox = Q("devbox", QubeClass.StandaloneVM, "orange");

        var reports = TemplateTrust.AssessAll([work, fedora, devbox, debian]);

        Assert.Equal(["debian-13", "fedora-42"], reports.Select(r => r.Template.Name));
        Assert.Equal("work", Assert.Single(reports[1].Dependents).Name);
    }
}
