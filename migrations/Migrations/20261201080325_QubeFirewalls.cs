using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace QubesWeb.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class QubeFirewalls : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "FirewallPolicy",
                table: "Qubes",
                type: "TEXT",
                maxLength: 8,
                nullable: false,
                // Qubes' default for every existing qube: all outgoing traffic allowed.
                defaultValue: "Accept");

            migrationBuilder.CreateTable(
                name: "FirewallRules",
                columns: table => new
                {
                    Id = table.Column<int>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    QubeId = table.Column<int>(type: "INTEGER", nullable: false),
                    Position = table.Column<int>(type: "INTEGER", nullable: false),
                    Action = table.Column<string>(type: "TEXT", maxLength: 8, nullable: false),
                    Destination = table.Column<string>(type: "TEXT", maxLength: 18, nullable: true),
                    Protocol = table.Column<string>(type: "TEXT", maxLength: 8, nullable: false),
                    PortStart = table.Column<int>(type: "INTEGER", nullable: true),
                    PortEnd = table.Column<int>(type: "INTEGER", nullable: true),
                    IcmpType = table.Column<int>(type: "INTEGER", nullable: true),
                    Comment = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_FirewallRules", x => x.Id);
                    table.ForeignKey(
                        name: "FK_FirewallRules_Qubes_QubeId",
                        column: x => x.QubeId,
                        principalTable: "Qubes",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_FirewallRules_QubeId_Position",
                table: "FirewallRules",
                columns: new[] { "QubeId", "Position" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "FirewallRules");

            migrationBuilder.DropColumn(
                name: "FirewallPolicy",
                table: "Qubes");
        }
    }
}
