using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;

namespace QubesWeb.UnitTests;

public class EstateViewTests
{
    private static readonly Label Red = new() { Id = 1, Name = "red", Color = "#cc0000" };
    private static readonly Label Black = new() { Id = 8, Name = "black", Color = "#000000" };
    private const long MiB = 1L << 20;

    private static QubeRow Row(string name, QubeClass cls, RunState state, string label = "red", string? template = null, bool isInternal = false) =>
        new(name, cls, label, "#000", state, template, null, false, 400, 2, 0, isInternal);

    private static readonly List<QubeRow> Rows =
    [
        Row("fedora-42", QubeClass.TemplateVM, RunState.Halted, "black"),
        Row("work", QubeClass.AppVM, RunState.Running, "blue", "fedora-42"),
        Row("vault", QubeClass.AppVM, RunState.Halted, "black", "debian-13"),
        Row("default-dvm", QubeClass.AppVM, RunState.Halted, "gray", "fedora-42", isInternal: true),
    ];

    private static List<string> Apply(string? search = null, string[]? classes = null, string[]? states = null, string[]? labels = null,
        string[]? templates = null, bool showInternal = false) =>
        QubeFilter.Apply(Rows, new QubeFilter(search, classes ?? [], states ?? [], labels ?? [], templates ?? [], showInternal)).Select(r => r.Name).ToList();

    [Fact]
    public void Internal_qubes_are_hidden_unless_asked_for() =>
        Assert.Equal(["fedora-42", "work", "vault"], Apply());

    [Fact]
    public void Each_filter_narrows_the_rows_and_filters_combine()
    {
        Assert.Equal(["work", "vault"], Apply(classes: ["AppVM"]));
        Assert.Equal(["work"], Apply(states: ["running"]));
        Assert.Equal(["fedora-42", "vault"], Apply(labels: ["black"]));
        Assert.Equal(["work", "default-dvm"], Apply(templates: ["fedora-42"], showInternal: true));
        Assert.Equal(["vault"], Apply(classes: ["AppVM"], labels: ["black"]));
        Assert.Empty(Apply(classes: ["TemplateVM"], states: ["running"]));
    }

    [Fact]
    public void Search_matches_name_class_label_and_template_case_insensitively()
    {
        Assert.Equal(["vault"], Apply("VAU"));
        Assert.Equal(["fedora-42", "work"], Apply("fedora"));
        Assert.Equal(["fedora-42"], Apply("templatevm"));
        Assert.Empty(Apply("nothing-like-this"));
    }

    private static Qube Q(string name, QubeClass cls, Qube? template = null, long root = 0, long priv = 0) => new()
    {
        Name = name, Class = cls, Label = cls == QubeClass.TemplateVM ? Black : Red, Template = template,
        Volumes = [new Volume { Kind = VolumeKind.Root, UsageBytes = root }, new Volume { Kind = VolumeKind.Private, UsageBytes = priv }],
    };

    [Fact]
    public void Disk_usage_is_summed_by_class_and_by_template_and_sharing_saves_a_root_per_appvm()
    {
        var fedora = Q("fedora-42", QubeClass.TemplateVM, root: 300 * MiB, priv: 10 * MiB);
        var debian = Q("debian-13", QubeClass.TemplateVM, root: 200 * MiB);
        var work = Q("work", QubeClass.AppVM, fedora, priv: 6 * MiB);
        var dvm = Q("default-dvm", QubeClass.AppVM, fedora, priv: 1 * MiB);
        var disp = Q("disp1", QubeClass.DispVM, dvm, priv: 1 * MiB);
        var vault = Q("vault", QubeClass.AppVM, debian, priv: 2 * MiB);
        var devbox = Q("devbox", QubeClass.StandaloneVM, root: 500 * MiB);

        var summary = DiskUsageSummary.From([fedora, debian, work, dvm, disp, vault, devbox]);

        Assert.Equal((300 + 10 + 200 + 6 + 1 + 1 + 2 + 500) * MiB, summary.TotalBytes);
        Assert.Equal(("fedora-42", (300 + 10 + 6 + 1 + 1) * MiB), summary.ByTemplate.Single(t => t.Name == "fedora-42"));
        Assert.Equal(("debian-13", (200 + 2) * MiB), summary.ByTemplate.Single(t => t.Name == "debian-13"));
        Assert.Equal(("standalones", 500 * MiB), summary.ByTemplate.Single(t => t.Name == "standalones"));
        Assert.Equal(("AppVM", (6 + 1 + 2) * MiB), summary.ByClass.Single(c => c.Name == "AppVM"));
        // work, default-dvm and disp1 would each copy fedora's 300 MiB root; vault debian's 200 MiB.
        Assert.Equal((3 * 300 + 200) * MiB, summary.SavedBySharingBytes);
        Assert.Equal(4, summary.SharingQubes);
    }
}
